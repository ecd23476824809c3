export * from './parts';
export * from './serve';
export * from './data-dir-lock';
export * from './polling-loop';
