import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EVENT_TYPES, EventContext, createUuidV7Generator } from '@lading/events';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import { OciError } from '@lading/oci';
import { REGISTRY_MIGRATIONS } from '@lading/runtime';
import { type BlobStore, createFilesystemBlobStore } from '@lading/storage';
import { TestManifest, databaseEngines, ociRefusal, outboxEvents, seedImage } from '@lading/testing';
import { ManifestWriteDeps, pushManifest, removeManifest, removeTag } from './manifest-writes';
import { removeRepository } from './repository-deletion';

const context: EventContext = { actor: { name: 'root', type: 'user' }, request: null };

/** The same checks on PGlite (embedded) and on a real PostgreSQL with a pool of connections (replicas). */
describe.each(databaseEngines('repodeletion'))('repository deletion on %s', (_name, open) => {
  let db: Database;
  let drop: () => Promise<void>;
  let store: BlobStore;
  let storageRoot: string;
  let writes: ManifestWriteDeps;

  beforeAll(async () => {
    ({ db, drop } = await open());
    await meta.migrate(db, REGISTRY_MIGRATIONS);
    storageRoot = await mkdtemp(path.join(tmpdir(), 'lading-repodeletion-'));
    store = await createFilesystemBlobStore(path.join(storageRoot, 'blobs'));
    writes = { db, events: { source: '//test/lading', ids: createUuidV7Generator(), now: () => new Date() }, reviewDelayMs: 60_000 };
  });
  afterAll(async () => {
    await db.close();
    await drop();
    await rm(storageRoot, { recursive: true, force: true });
  });

  const image = (repository: string) => seedImage({ db, store }, repository);
  const push = (repository: string, m: TestManifest, tags: string[]) => pushManifest(writes, { repository, body: m.body, contentType: m.mediaType, expectedDigest: null, tags, context });
  const count = async (sql: string, params: unknown[]) => Number((await db.query<{ n: string }>(sql, params)).rows[0].n);

  it('deletes everything of the repository in one transaction with its event, queuing its blobs for review', async () => {
    const [a, b] = [await image('gone/app'), await image('gone/app')];
    await push('gone/app', a, ['v1', 'latest']);
    await push('gone/app', b, []);
    await db.query(`INSERT INTO uploads (id, repository_id) SELECT gen_random_uuid(), id FROM repositories WHERE name = 'gone/app'`);
    const repositoryId = (await meta.findRepository(db, 'gone/app'))!.id;

    expect(await removeRepository(writes, { repository: 'gone/app', force: false, context })).toEqual({ repository: 'gone/app', tags: 2, manifests: 2, blobsQueued: 4, uploads: 1 });
    expect(await meta.findRepository(db, 'gone/app')).toBeNull();
    for (const table of ['tags', 'manifests', 'repository_blobs', 'uploads', 'image_metadata', 'manifest_blob_references', 'gc_manifest_review_queue']) {
      expect({ table, rows: await count(`SELECT count(*)::text AS n FROM ${table} WHERE repository_id = $1`, [repositoryId]) }).toEqual({ table, rows: 0 });
    }
    expect(await count(`SELECT count(*)::text AS n FROM gc_blob_review_queue WHERE reason = 'repository deleted'`, [])).toBe(4);
    expect(await count(`SELECT count(*)::text AS n FROM gc_tombstones WHERE kind = 'upload'`, [])).toBe(1);
    const events = await outboxEvents(db, 'gone/app');
    expect(events.at(-1)).toMatchObject({ type: EVENT_TYPES.repositoryDeleted, subject: 'gone/app', data: { repository: 'gone/app', actor: context.actor } });
    expect(events.filter((e) => e.type === EVENT_TYPES.repositoryDeleted)).toHaveLength(1);
  });

  it('refuses NAME_UNKNOWN for no such repository, changing nothing', async () => {
    const refusal = await ociRefusal(removeRepository(writes, { repository: 'never/was', force: false, context }));
    expect(refusal.code).toBe('NAME_UNKNOWN');
    expect(await outboxEvents(db, 'never/was')).toEqual([]);
  });

  it('survives racing pushes, tag and manifest deletes on the same repository: each either commits whole or is refused', async () => {
    for (let round = 0; round < 3; round++) {
      const repository = `race${round}/app`;
      const images: TestManifest[] = [];
      for (let i = 0; i < 6; i++) images.push(await image(repository));
      await push(repository, images[0], ['v0']);
      await push(repository, images[1], ['v1']);
      const outcomes = await Promise.allSettled([
        ...images.slice(2).map((m, i) => push(repository, m, [`new${i}`])),
        removeTag(writes, { repository, tag: 'v0', context }),
        removeManifest(writes, { repository, digest: images[1].digest, context }),
        removeRepository(writes, { repository, force: false, context }),
      ]);
      const deletion = outcomes.at(-1)!;
      expect(deletion.status).toBe('fulfilled');
      // A write that lost the race finds the repository (or its blob links) gone: an OCI refusal, never a database error.
      const failures = outcomes.flatMap((o) => (o.status === 'rejected' && !(o.reason instanceof OciError) ? [String((o.reason as Error).stack ?? o.reason)] : []));
      expect(failures).toEqual([]);
      // Whatever survived (pushes after the deletion made a new repository) is consistent: every manifest's blobs linked.
      const unlinked = await count(
        `SELECT count(*)::text AS n FROM manifest_blob_references r JOIN repositories p ON p.id = r.repository_id
          WHERE p.name = $1 AND NOT EXISTS (SELECT 1 FROM repository_blobs l WHERE l.repository_id = r.repository_id AND l.blob_digest = r.blob_digest)`,
        [repository],
      );
      expect(unlinked).toBe(0);
    }
  });
});
