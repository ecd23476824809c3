export * from './blob-store';
export * from './filesystem-driver';
export * from './file-sync';
// Types only: the driver itself is loaded when an S3 store or a MinIO client is made (open-blob-store's factories).
export type { MinioClientSettings, RedirectingBlobStore, S3BlobStore, S3BlobStoreOptions } from './s3-driver';
export * from './instrumented-blob-store';
export * from './open-blob-store';
export * from './blob-stream';
