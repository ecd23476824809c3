import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeBlobStoreDriver } from '../test/driver-suite';
import { createFilesystemBlobStore } from './filesystem-driver';

describeBlobStoreDriver('filesystem', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'lading-fs-'));
  return { store: await createFilesystemBlobStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});

describe('filesystem driver', () => {
  it('refuses keys that would escape its root', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'lading-fs-'));
    const store = await createFilesystemBlobStore(root);
    await expect(store.stat('../../etc/passwd')).rejects.toThrow(/escapes/);
    await rm(root, { recursive: true, force: true });
  });
});
