export * from './blob-store';
export * from './filesystem-driver';
export * from './file-sync';
// Types only: the driver itself is loaded when an S3 store is created (createS3BlobStore in open-blob-store).
export type { MinioClientSettings, RedirectingBlobStore, S3BlobStore, S3BlobStoreOptions } from './s3-driver';
export { createMinioClient } from './s3-driver';
export * from './instrumented-blob-store';
export * from './open-blob-store';
export * from './blob-stream';
