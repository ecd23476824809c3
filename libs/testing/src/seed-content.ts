/**
 * Content put in place the way a completed upload leaves it, for tests of what comes after (manifest pushes):
 * objects in the store, blob rows, and links to a repository, without events (the upload is not under test).
 */
import { Readable } from 'node:stream';
import * as meta from '@lading/metadata';
import { blobKey } from '@lading/storage';
import { TestBlob, TestManifest, imageManifest, makeBlob } from './content';
import type { TestDeps } from './test-deps';

/** Stores blobs' objects, records them and links them to `repository` (created if needed). */
export async function seedBlobs(deps: Pick<TestDeps, 'db' | 'store'>, repository: string, blobs: TestBlob[]): Promise<void> {
  for (const blob of blobs) {
    const id = `seed-${blob.digest.slice(7, 20)}-${Math.random().toString(16).slice(2)}`;
    await deps.store.writeUpload(id, 0, Readable.from([blob.data]));
    await deps.store.commitUpload(id, blobKey(blob.digest), blob.size);
  }
  await deps.db.transaction(async (tx) => {
    const repo = await meta.ensureRepository(tx, repository);
    for (const blob of blobs) {
      await meta.insertBlob(tx, blob.digest, blob.size);
      await meta.linkBlob(tx, repo.id, blob.digest);
    }
  });
}

/** An image manifest (a unique config, one layer of `layerSize` random bytes) whose blobs are seeded in `repository`. */
export async function seedImage(deps: Pick<TestDeps, 'db' | 'store'>, repository: string, extra: Record<string, unknown> = {}, layerSize = 512): Promise<TestManifest> {
  const config = makeBlob(`{"architecture":"amd64","os":"linux","n":${Math.random()}}`);
  const layer = makeBlob(layerSize);
  await seedBlobs(deps, repository, [config, layer]);
  return imageManifest(config, [layer], extra);
}
