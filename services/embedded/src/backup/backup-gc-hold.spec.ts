/**
 * A backup against the collector, on the real embedded registry: a blob the snapshot names is collected (its
 * metadata deleted) right after the snapshot, before the backup copies it. The collector's object deletion waits for
 * the backup, so the archive still holds the blob, whole; once the backup ends the object goes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRegistryClient, RegistryClient } from '@lading/client';
import { parseConfig } from '@lading/config';
import { blobKey } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
import { makeBlob, makeGcQueuesDue } from '@lading/testing';
import { EmbeddedRegistry, createEmbeddedRegistry } from '../embedded-registry';
import { readBackupArchive } from './backup-archive';
import { prepareBackup } from './backup-stream';

describe('a backup holds the collector off the objects it copies', () => {
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  let client: RegistryClient;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-backup-gc-'));
    // The collector's loops stay off: the test runs its steps where it wants them.
    registry = await createEmbeddedRegistry(
      parseConfig({ data: { dir }, gc: { enabled: false }, log: { level: 'silent', access: false } }),
      createLogger({ service: 'test', level: 'silent' }),
    );
    server = registry.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    client = createRegistryClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  });
  afterAll(async () => {
    await client?.close();
    if (server) await new Promise((resolve) => server.close(resolve));
    await registry?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Moves the collector's clock on: its queues act now (@lading/testing). */
  async function makeDue(): Promise<void> {
    await makeGcQueuesDue(registry.db, { linkAge: '2 days' });
  }

  it('copies a blob collected after the snapshot, whose object is deleted only after the backup', async () => {
    // A blob no manifest references: the collector deletes it once its review is due.
    const doomed = makeBlob(64 * 1024 + 7);
    expect((await client.uploadBlob('team/app', doomed)).status).toBe(201);
    const other = makeBlob(1000);
    expect((await client.uploadBlob('team/app', other)).status).toBe(201);

    let duringBackup: { rowGone: boolean; object: unknown; held: number } | null = null;
    const backup = await prepareBackup({
      db: registry.db,
      store: registry.store,
      holdObjectDeletions: () => registry.gc.holdObjectDeletions(),
      version: { name: 'lading', version: 'test' },
      logger: createLogger({ service: 'test', level: 'silent' }),
      tmpDir: dir,
      hooks: {
        async afterSnapshot(summary) {
          expect(summary.blobs.count).toBe(2);
          // The collector runs between the snapshot and the copy: it deletes the metadata and tries the object.
          await makeDue();
          await registry.gc.runUntilIdle();
          await makeDue();
          await registry.gc.runUntilIdle();
          duringBackup = {
            rowGone: (await registry.db.query(`SELECT 1 FROM blobs WHERE digest = $1`, [doomed.digest])).rows.length === 0,
            object: await registry.store.stat(blobKey(doomed.digest)),
            held: registry.gc.counters.postponed.held,
          };
        },
      },
    });
    const copied = new Map<string, number>();
    try {
      const chunks = backup.stream();
      await readBackupArchive(chunks, {
        summary: async () => undefined,
        metadata: async (body) => {
          for await (const chunk of body) void chunk;
        },
        blob: async (blob, body) => {
          let bytes = 0;
          for await (const chunk of body) bytes += chunk.length;
          copied.set(blob.digest, bytes);
        },
      });
    } finally {
      await backup.close();
    }
    expect(duringBackup).toEqual({ rowGone: true, object: { size: doomed.size }, held: expect.any(Number) });
    expect(duringBackup!.held).toBeGreaterThan(0);
    // The archive holds both blobs, whole (readBackupArchive checked their digests).
    expect(Object.fromEntries(copied)).toEqual({ [doomed.digest]: doomed.size, [other.digest]: other.size });

    // With the backup over, the held deletion goes through.
    await makeDue();
    await registry.gc.runUntilIdle();
    expect(await registry.store.stat(blobKey(doomed.digest))).toBeNull();
    expect(await registry.store.stat(blobKey(other.digest))).toBeNull();
  });
});
