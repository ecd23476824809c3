/** Opens the blob store the configuration names: the filesystem (embedded) or S3/MinIO (distributed). */
import path from 'node:path';
import type { LadingConfig } from '@lading/config';
import type { BlobStore } from './blob-store';
import { createFilesystemBlobStore } from './filesystem-driver';
import { StorageMetrics, instrumentBlobStore } from './instrumented-blob-store';
import type { Client as MinioClient } from 'minio';
import type { MinioClientSettings, RedirectingBlobStore, S3BlobStoreOptions } from './s3-driver';

/** The S3 driver, loaded only when configured: the MinIO client is megabytes of modules the filesystem never needs. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const loadS3Driver = () => require('./s3-driver') as typeof import('./s3-driver');

/** What the opened store records into. */
export interface OpenBlobStoreOptions {
  /** Times every storage call into `registry_storage_action_seconds` (spans are made inside traces either way). */
  metrics?: StorageMetrics;
}

/** Creates an S3/MinIO store (the driver, and the MinIO client with it, is loaded on first use). */
export function createS3BlobStore(options: S3BlobStoreOptions): Promise<RedirectingBlobStore> {
  return loadS3Driver().createS3BlobStore(options);
}

/**
 * A MinIO client for an endpoint URL, path-style (see the S3 driver's `createMinioClient`), for the operator tools
 * that read the bucket directly; the driver and the MinIO client are loaded on the first call.
 */
export function createMinioClient(settings: MinioClientSettings): MinioClient {
  return loadS3Driver().createMinioClient(settings);
}

/** Opens the configured blob store, instrumented (`storage.<action>` spans, call durations) whatever the driver. */
export async function openBlobStore(config: LadingConfig, options: OpenBlobStoreOptions = {}): Promise<BlobStore | RedirectingBlobStore> {
  if (config.storage.driver === 's3') {
    return createS3BlobStore({
      endpoint: config.storage.endpoint as string,
      accessKey: config.storage.accessKey as string,
      secretKey: config.storage.secretKey as string,
      bucket: config.storage.bucket,
      region: config.storage.region,
      metrics: options.metrics,
    });
  }
  const root = config.storage.root ?? path.join(path.resolve(config.data.dir), 'blobs');
  return instrumentBlobStore(await createFilesystemBlobStore(root, { fsync: config.storage.fsync }), { bucket: root, metrics: options.metrics });
}

/** True when a store can presign URLs for redirects. */
export function canRedirect(store: BlobStore): store is RedirectingBlobStore {
  return typeof (store as Partial<RedirectingBlobStore>).presignGet === 'function';
}
