export * from './parts';
export * from './serve';
export * from './data-dir-lock';
export * from './polling-loop';
export * from './outbox-loops';
export * from './migrations';
export * from './version';
export * from './command-line';
