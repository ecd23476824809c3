export * from './blob-store';
export * from './filesystem-driver';
export * from './s3-driver';
export * from './instrumented-blob-store';
export * from './open-blob-store';
export * from './blob-stream';
