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
/** The defaults: a small repository goes in the request's batches. */
const BATCHES = { batchSize: 1000, inline: 10 };

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

  it('deletes everything of a small repository before answering, with its one event, queuing each of its blobs once for review', async () => {
    const [a, b] = [await image('gone/app'), await image('gone/app')];
    await push('gone/app', a, ['v1', 'latest']);
    await push('gone/app', b, []);
    await db.query(`INSERT INTO uploads (id, repository_id) SELECT gen_random_uuid(), id FROM repositories WHERE name = 'gone/app'`);
    const repositoryId = (await meta.findRepository(db, 'gone/app'))!.id;

    expect(await removeRepository(writes, { repository: 'gone/app', force: false, context }, BATCHES)).toEqual({ repository: 'gone/app', tags: 2, manifests: 2, blobsQueued: 4, uploads: 1 });
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

  it('deletes a large repository in bounded batches: out of sight at once, a re-push makes a new repository, a batch that dies rolls back whole, and the collector finishes it', async () => {
    const repository = 'big/app';
    for (let i = 0; i < 7; i++) await push(repository, await image(repository), [`t${i}`]);
    const repositoryId = (await meta.findRepository(db, repository))!.id;
    const held = await count(
      `SELECT count(*)::text AS n FROM (SELECT blob_digest FROM repository_blobs WHERE repository_id = $1
                                         UNION SELECT blob_digest FROM manifest_blob_references WHERE repository_id = $1) held`,
      [repositoryId],
    );
    const left = () => count(`SELECT count(*)::text AS n FROM manifests WHERE repository_id = $1`, [repositoryId]);

    // One batch of two manifests in the request, then the answer: pending.
    const answer = await removeRepository(writes, { repository, force: false, context }, { batchSize: 2, inline: 1 });
    expect(answer).toEqual({ repository, tags: 7, manifests: 7, blobsQueued: 4, uploads: 0, pending: true });
    expect(await left()).toBe(5);

    // Out of sight at once: no lookup, catalog, console listing or search finds it or its tombstone.
    expect(await meta.findRepository(db, repository)).toBeNull();
    const everyone = { kind: 'everyone' } as const;
    const listed = [
      ...(await meta.listRepositories(db, null, 1000)),
      ...(await meta.listConsoleRepositories(db, everyone, null, 1000)).map((r) => r.name),
      ...(await meta.searchRepositories(db, { text: '', viewer: everyone, limit: 100, offset: 0 })).hits.map((h) => h.repository),
      ...(await meta.searchRepositories(db, { text: 'big', viewer: everyone, limit: 100, offset: 0 })).hits.map((h) => h.repository),
      ...(await meta.searchRepositories(db, { text: 'deleting', viewer: everyone, limit: 100, offset: 0 })).hits.map((h) => h.repository),
    ];
    expect(listed.filter((name) => name.startsWith('big') || name.startsWith('~'))).toEqual([]);

    // A push of the name during the deletion makes a new repository, which the batches never touch.
    const again = await image(repository);
    await push(repository, again, ['t0']);
    const fresh = (await meta.findRepository(db, repository))!;
    expect(fresh.id).not.toBe(repositoryId);

    // A batch whose process dies before its commit changes nothing.
    const dying: Pick<Database, 'transaction'> = {
      transaction: (work) =>
        db.transaction(async (tx) => {
          await work(tx);
          throw new Error('the process died');
        }),
    };
    await expect(meta.continueRepositoryDeletion(dying, { batchSize: 2, reviewDelayMs: 60_000 })).rejects.toThrow('the process died');
    expect(await left()).toBe(5);

    // The collector's batches (the oldest job, no id given) finish it; each blob was queued exactly once.
    let progress: meta.RepositoryDeletionProgress | null;
    do progress = await meta.continueRepositoryDeletion(db, { batchSize: 2, reviewDelayMs: 60_000 });
    while (progress && !progress.finished);
    expect(progress).toMatchObject({ repositoryId, repository, manifests: 7, manifestsDeleted: 7, blobsQueued: held, finished: true });
    for (const table of ['repositories', 'repository_deletions']) {
      const column = table === 'repositories' ? 'id' : 'repository_id';
      expect({ table, rows: await count(`SELECT count(*)::text AS n FROM ${table} WHERE ${column} = $1`, [repositoryId]) }).toEqual({ table, rows: 0 });
    }
    for (const table of ['tags', 'manifests', 'repository_blobs', 'image_metadata', 'manifest_blob_references']) {
      expect({ table, rows: await count(`SELECT count(*)::text AS n FROM ${table} WHERE repository_id = $1`, [repositoryId]) }).toEqual({ table, rows: 0 });
    }
    expect(await meta.continueRepositoryDeletion(db, { batchSize: 2, reviewDelayMs: 60_000 })).toBeNull();
    // The new repository kept its push; the deletion's one event came before the new repository's.
    expect((await meta.findRepository(db, repository))!.id).toBe(fresh.id);
    expect((await db.query<{ name: string }>(`SELECT name FROM tags WHERE repository_id = $1`, [fresh.id])).rows.map((t) => t.name)).toEqual(['t0']);
    const events = await outboxEvents(db, repository);
    expect(events.filter((e) => e.type === EVENT_TYPES.repositoryDeleted)).toHaveLength(1);
  });

  it('refuses NAME_UNKNOWN for no such repository, changing nothing', async () => {
    const refusal = await ociRefusal(removeRepository(writes, { repository: 'never/was', force: false, context }, BATCHES));
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
        removeRepository(writes, { repository, force: false, context }, BATCHES),
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
