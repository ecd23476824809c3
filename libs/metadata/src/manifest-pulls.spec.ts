/** Last-pulled times and what is stale by them, on PGlite (the same SQL runs on PostgreSQL). */
import type { Database } from './database';
import { createPgliteDatabase } from './pglite-adapter';
import { migrate } from './migrate';
import { ensureRepository } from './repositories';
import { insertManifest } from './manifests';
import { lockIfStale, recordManifestPulls, staleManifests } from './manifest-pulls';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const HOUR = 3_600_000;

describe('manifest pulls', () => {
  let db: Database;
  let hub: number;
  let other: number;
  /** Stored an hour ago: an index (1) of two images (2, 3), a lone image (4); and an image (5) in `hubby`, no proxy's namespace. */
  const stored = Date.now() - HOUR;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migrate(db);
    await db.transaction(async (tx) => {
      hub = (await ensureRepository(tx, 'hub/app')).id;
      other = (await ensureRepository(tx, 'hubby/app')).id;
      const put = (repositoryId: number, n: number, childDigests: string[] = []) =>
        insertManifest(tx, {
          repositoryId,
          digest: digest(n),
          mediaType: childDigests.length ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json',
          artifactType: null,
          payload: Buffer.from('{"schemaVersion":2}'),
          subjectDigest: null,
          annotations: null,
          blobDigests: [],
          childDigests,
        });
      await put(hub, 2);
      await put(hub, 3);
      await put(hub, 1, [digest(2), digest(3)]);
      await put(hub, 4);
      await put(other, 5);
      await tx.query(`UPDATE manifests SET created_at = to_timestamp($1::float8 / 1000.0)`, [stored]);
    });
  });
  afterAll(async () => db.close());

  const stale = async (cutoff: number) => (await staleManifests(db, 'hub', cutoff, 100)).map((m) => m.digest).sort();

  it('counts never-pulled manifests from when they were stored, leaves children to their index and other namespaces alone', async () => {
    expect(await stale(stored - 1000)).toEqual([]);
    expect(await stale(stored + 1000)).toEqual([digest(1), digest(4)]);
  });

  it('records pulls of existing manifests only, and a recent pull (of the index or of one of its children) saves it', async () => {
    const now = Date.now();
    expect(
      await recordManifestPulls(db, [
        { repository: 'hub/app', digest: digest(4), at: now },
        { repository: 'hub/app', digest: digest(9), at: now },
        { repository: 'nowhere', digest: digest(4), at: now },
      ]),
    ).toBe(1);
    expect(await stale(now - 1000)).toEqual([digest(1)]);
    expect(await recordManifestPulls(db, [{ repository: 'hub/app', digest: digest(3), at: now }])).toBe(1);
    expect(await stale(now - 1000)).toEqual([]);
    expect(await stale(now + 1000)).toEqual([digest(1), digest(4)]);
  });

  it('locks a manifest for eviction only while it is still stale', async () => {
    const now = Date.now();
    await recordManifestPulls(db, [{ repository: 'hub/app', digest: digest(4), at: now }]);
    await db.transaction(async (tx) => {
      expect(await lockIfStale(tx, hub, digest(4), now - 1000)).toBe(false);
      expect(await lockIfStale(tx, hub, digest(4), now + 1000)).toBe(true);
      expect(await lockIfStale(tx, other, digest(5), stored + 1000)).toBe(true);
    });
  });
});
