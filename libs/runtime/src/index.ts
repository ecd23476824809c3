export * from './parts';
export * from './serve';
