/**
 * A bucket of the benchmark's own on the cluster's MinIO, for the Distribution v3 replicas that run on S3: made at
 * start, emptied and removed at stop, so that nothing of theirs is left beside the cluster's objects.
 */
import { randomBytes } from 'node:crypto';
import type * as Minio from 'minio';
import { createMinioClient } from '@lading/storage';
import { infraSettings } from './infra-env';

/** Where the cluster's MinIO is and the keys to it (tools/infra's settings). */
export interface S3Settings {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
}

/** A bucket the benchmark made, and how to take it away again. */
export interface ScratchBucket {
  name: string;
  remove(): Promise<void>;
}

/**
 * The MinIO settings the cluster runs on: `.infra/env` (written by tools/infra), with the caller's LADING_STORAGE_*
 * winning over it, as tools/cluster reads them.
 */
export function clusterS3Settings(root: string, env: NodeJS.ProcessEnv = process.env): S3Settings {
  const settings = infraSettings(root, env);
  const setting = (key: string): string => {
    const value = settings[`LADING_STORAGE_${key}`];
    if (!value) throw new Error(`no LADING_STORAGE_${key} (in the environment or .infra/env; tools/infra writes it)`);
    return value;
  };
  return { endpoint: setting('ENDPOINT'), accessKey: setting('ACCESSKEY'), secretKey: setting('SECRETKEY'), region: settings.LADING_STORAGE_REGION ?? 'us-east-1' };
}

/** Makes a bucket with a fresh name on the MinIO of `settings`. */
export async function createScratchBucket(settings: S3Settings): Promise<ScratchBucket> {
  const client = createMinioClient(settings);
  const name = `lading-bench-${randomBytes(6).toString('hex')}`;
  await client.makeBucket(name, settings.region);
  return {
    name,
    async remove() {
      const names: string[] = [];
      for await (const item of client.listObjectsV2(name, '', true) as AsyncIterable<Minio.BucketItem>) if (item.name) names.push(item.name);
      for (let i = 0; i < names.length; i += 1000) await client.removeObjects(name, names.slice(i, i + 1000));
      for await (const upload of client.listIncompleteUploads(name, '', true) as AsyncIterable<Minio.IncompleteUploadedBucketItem>) await client.removeIncompleteUpload(name, upload.key);
      await client.removeBucket(name);
    },
  };
}
