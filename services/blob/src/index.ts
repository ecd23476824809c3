export * from './blob-service';
export * from './blob-pull-through';
