/**
 * Abandoned uploads, on PGlite and the filesystem: 1,000 sessions opened and written to through the API, then left;
 * once idle longer than the upload TTL the collector deletes them (rows, then stored data, through tombstones)
 * and the uploads area of storage is back to its baseline.
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { GcWorker, createGcWorker } from '../src';
import { TestDeps, createTestDeps } from '@lading/testing';
import { RegistryUnderTest, startRegistry } from './registry-under-test';

describe('garbage collection of abandoned uploads (PGlite)', () => {
  let deps: TestDeps;
  let reg: RegistryUnderTest;
  let gc: GcWorker;

  beforeAll(async () => {
    deps = await createTestDeps({ gc: { uploadTtl: '1h' } });
    reg = await startRegistry(deps);
    gc = createGcWorker(deps);
  });
  afterAll(async () => {
    await reg.close();
    await deps.close();
  });

  it('purges 1,000 abandoned upload sessions after the upload TTL, and storage returns to its baseline', async () => {
    const uploadsDir = path.join(deps.storageRoot, 'blobs', 'uploads');
    const listing = async () => (await readdir(uploadsDir).catch(() => [] as string[])).sort();
    const baseline = await listing();
    const locations: string[] = [];
    for (let i = 0; i < 1000; i += 50) {
      locations.push(...(await Promise.all(Array.from({ length: 50 }, () => reg.client.abandonUpload('abandoned/app', randomBytes(64))))));
    }
    expect((await listing()).length).toBe(baseline.length + 1000);
    // Within the TTL nothing goes.
    await gc.runUntilIdle();
    expect((await deps.db.query(`SELECT count(*)::int AS n FROM uploads`)).rows[0]).toEqual({ n: 1000 });
    await deps.db.query(`UPDATE uploads SET updated_at = now() - interval '2 hours'`);
    await gc.runUntilIdle();
    expect((await deps.db.query(`SELECT count(*)::int AS n FROM uploads`)).rows[0]).toEqual({ n: 0 });
    expect((await deps.db.query(`SELECT count(*)::int AS n FROM gc_tombstones WHERE kind = 'upload'`)).rows[0]).toEqual({ n: 0 });
    expect(gc.counters.deleted.uploads).toBe(1000);
    expect(await listing()).toEqual(baseline);
    expect((await reg.client.send('PATCH', locations[0], Buffer.from('late'))).status).toBe(404);
  }, 120_000);
});
