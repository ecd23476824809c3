/** Opens the blob store the configuration names: the filesystem (embedded) or S3/MinIO (distributed). */
import path from 'node:path';
import type { LadingConfig } from '@lading/config';
import type { BlobStore } from './blob-store';
import { createFilesystemBlobStore } from './filesystem-driver';
import { RedirectingBlobStore, createS3BlobStore } from './s3-driver';

/** Opens the configured blob store. */
export async function openBlobStore(config: LadingConfig): Promise<BlobStore | RedirectingBlobStore> {
  if (config.storage.driver === 's3') {
    return createS3BlobStore({
      endpoint: config.storage.endpoint as string,
      accessKey: config.storage.accessKey as string,
      secretKey: config.storage.secretKey as string,
      bucket: config.storage.bucket,
      region: config.storage.region,
    });
  }
  return createFilesystemBlobStore(config.storage.root ?? path.join(path.resolve(config.data.dir), 'blobs'));
}

/** True when a store can presign URLs for redirects. */
export function canRedirect(store: BlobStore): store is RedirectingBlobStore {
  return typeof (store as Partial<RedirectingBlobStore>).presignGet === 'function';
}
