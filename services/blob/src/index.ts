export * from './blob-service';
