import { readdir } from 'node:fs/promises';
import { Database, PG_ERRORS, sqlState } from './database';
import { createPgliteDatabase } from './pglite-adapter';
import { MIGRATIONS_DIR, migrate } from './migrate';
import { ensureRepository, findRepository, listRepositories } from './repositories';
import { findRepositoryBlob, insertBlob, linkBlob, lockBlob, missingRepositoryBlobs, unlinkBlob } from './blobs';
import { deleteManifest, deleteTag, findManifestByDigest, findManifestByTag, insertManifest, listTags, missingManifests, upsertTag } from './manifests';
import { advanceUpload, claimUpload, createUpload, deleteUpload, findUpload, releaseUpload } from './uploads';
import { queueBlobReview, queueManifestReview } from './gc-queue';
import { manifestsReferencingBlob } from './gc-references';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const UPLOAD_1 = '0190f1c2-7b3a-7000-8000-000000000001';
const UPLOAD_2 = '0190f1c2-7b3a-7000-8000-000000000002';

describe('metadata', () => {
  let db: Database;

  beforeAll(async () => {
    db = await createPgliteDatabase();
  });
  afterAll(async () => db.close());

  /** A repository with blobs 1..3 linked and a manifest (digest 100) referencing blobs 1 and 2. */
  async function repositoryWithManifest(name: string, extra: { tags?: string[]; children?: string[] } = {}): Promise<number> {
    return db.transaction(async (tx) => {
      const repo = await ensureRepository(tx, name);
      for (const n of [1, 2, 3]) {
        await insertBlob(tx, digest(n), n * 10);
        await linkBlob(tx, repo.id, digest(n));
      }
      await insertManifest(tx, {
        repositoryId: repo.id,
        digest: digest(100),
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: null,
        payload: Buffer.from('{"schemaVersion":2}'),
        subjectDigest: null,
        annotations: null,
        blobDigests: [digest(1), digest(2), digest(2)],
        childDigests: extra.children ?? [],
      });
      for (const tag of extra.tags ?? []) await upsertTag(tx, repo.id, tag, digest(100));
      return repo.id;
    });
  }

  async function count(sql: string, params: unknown[]): Promise<number> {
    return Number((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)).rows[0].n);
  }

  describe('migrate', () => {
    it('applies every migration once and nothing on a second call', async () => {
      const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
      expect(files).toContain('0001_registry.sql');
      expect(await migrate(db)).toEqual(files);
      expect(await migrate(db)).toEqual([]);
      expect((await db.query<{ name: string }>(`SELECT name FROM schema_migrations ORDER BY name`)).rows.map((r) => r.name)).toEqual(files);
    });
  });

  describe('foreign keys', () => {
    it('deleting a manifest row cascades to its tags, blob references and children', async () => {
      const id = await repositoryWithManifest('fk/cascade', { tags: ['v1', 'latest'], children: [digest(200)] });
      expect(await count(`tags WHERE repository_id = $1`, [id])).toBe(2);
      expect(await count(`manifest_blob_references WHERE repository_id = $1`, [id])).toBe(2);
      await db.query(`DELETE FROM manifests WHERE repository_id = $1 AND digest = $2`, [id, digest(100)]);
      expect(await count(`tags WHERE repository_id = $1`, [id])).toBe(0);
      expect(await count(`manifest_blob_references WHERE repository_id = $1`, [id])).toBe(0);
      expect(await count(`manifest_children WHERE repository_id = $1`, [id])).toBe(0);
    });

    // The links' blob foreign key is ON DELETE RESTRICT (the references' is gone: 0011_lazy_references.sql). PostgreSQL up to 17 reports that as 23503 foreign_key_violation;
    // PostgreSQL 18 (PGlite 0.5) reports 23001 restrict_violation. Code that reacts to it must accept both.
    const RESTRICT_STATES = [PG_ERRORS.foreignKeyViolation, '23001'];

    async function deleteBlobRow(d: string): Promise<unknown> {
      return db.query(`DELETE FROM blobs WHERE digest = $1`, [d]).then(
        () => null,
        (e: unknown) => e,
      );
    }

    it('records a reference to a blob not stored (a lazy layer of a pull-through cache), which counts once the blob is', async () => {
      const id = await db.transaction(async (tx) => {
        const repo = await ensureRepository(tx, 'fk/lazy');
        await insertManifest(tx, {
          repositoryId: repo.id,
          digest: digest(300),
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType: null,
          payload: Buffer.from('{"schemaVersion":2}'),
          subjectDigest: null,
          annotations: null,
          blobDigests: [digest(301)],
          childDigests: [],
        });
        return repo.id;
      });
      expect(await lockBlob(db, digest(301))).toBeNull();
      await db.transaction((tx) => insertBlob(tx, digest(301), 5));
      expect(await manifestsReferencingBlob(db, digest(301), 10)).toEqual([{ repositoryId: id, repository: 'fk/lazy', digest: digest(300) }]);
    });

    it('refuses to delete a blob row a repository links to, with a foreign-key SQLSTATE', async () => {
      await db.transaction(async (tx) => {
        const repo = await ensureRepository(tx, 'fk/linked');
        await insertBlob(tx, digest(50), 1);
        await linkBlob(tx, repo.id, digest(50));
      });
      const err = await deleteBlobRow(digest(50));
      expect(RESTRICT_STATES).toContain(sqlState(err));
      expect(String((err as Error).message)).toContain('repository_blobs');
    });

    it('deletes a blob row nothing references', async () => {
      await db.transaction((tx) => insertBlob(tx, digest(51), 1));
      expect(await deleteBlobRow(digest(51))).toBeNull();
      expect(await lockBlob(db, digest(51))).toBeNull();
    });

    it('refuses a tag that points at a manifest the repository does not have', async () => {
      const repo = await db.transaction((tx) => ensureRepository(tx, 'fk/dangling'));
      await expect(db.transaction((tx) => upsertTag(tx, repo.id, 'v1', digest(999)))).rejects.toMatchObject({ code: '23503' });
    });

    it('deleteManifest reports the blob references, children and tags it removed', async () => {
      const id = await repositoryWithManifest('fk/report', { tags: ['b', 'a'], children: [digest(201)] });
      const deleted = await db.transaction((tx) => deleteManifest(tx, id, digest(100)));
      expect(deleted).toEqual({
        digest: digest(100),
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: 19,
        blobDigests: expect.arrayContaining([digest(1), digest(2)]),
        childDigests: [digest(201)],
        tags: ['a', 'b'],
      });
      expect(deleted?.blobDigests).toHaveLength(2);
      expect(await db.transaction((tx) => deleteManifest(tx, id, digest(100)))).toBeNull();
    });
  });

  describe('manifests', () => {
    it('inserts a manifest once and finds it by digest and by tag', async () => {
      const id = await repositoryWithManifest('m/find', { tags: ['v1'] });
      const again = await db.transaction((tx) =>
        insertManifest(tx, {
          repositoryId: id, digest: digest(100), mediaType: 'x/y', artifactType: null, payload: Buffer.from('other'),
          subjectDigest: null, annotations: null, blobDigests: [], childDigests: [],
        }),
      );
      expect(again).toBe(false);
      const byDigest = await findManifestByDigest(db, 'm/find', digest(100));
      expect(byDigest?.payload.toString()).toBe('{"schemaVersion":2}');
      expect(Buffer.isBuffer(byDigest?.payload)).toBe(true);
      expect((await findManifestByTag(db, 'm/find', 'v1'))?.digest).toBe(digest(100));
      expect(await findManifestByTag(db, 'm/find', 'v2')).toBeNull();
      expect(await missingManifests(db, id, [digest(100), digest(101)])).toEqual([digest(101)]);
    });
  });

  describe('tags', () => {
    let id: number;
    beforeAll(async () => {
      id = await repositoryWithManifest('t/tags');
      await db.transaction((tx) =>
        insertManifest(tx, {
          repositoryId: id, digest: digest(101), mediaType: 'x/y', artifactType: null, payload: Buffer.from('2'),
          subjectDigest: null, annotations: null, blobDigests: [], childDigests: [],
        }),
      );
    });

    it('upsertTag reports a new tag as changed with no previous digest', async () => {
      expect(await db.transaction((tx) => upsertTag(tx, id, 'move-me', digest(100)))).toEqual({ previousDigest: null, changed: true });
    });

    it('upsertTag returns the previous digest when the tag moves', async () => {
      await db.transaction((tx) => upsertTag(tx, id, 'moving', digest(100)));
      expect(await db.transaction((tx) => upsertTag(tx, id, 'moving', digest(101)))).toEqual({ previousDigest: digest(100), changed: true });
      expect((await findManifestByTag(db, 't/tags', 'moving'))?.digest).toBe(digest(101));
    });

    it('upsertTag reports changed=false when the tag already points at the digest', async () => {
      await db.transaction((tx) => upsertTag(tx, id, 'same', digest(101)));
      expect(await db.transaction((tx) => upsertTag(tx, id, 'same', digest(101)))).toEqual({ previousDigest: null, changed: false });
    });

    it('deleteTag returns the digest the tag pointed at, or null when there was no tag', async () => {
      await db.transaction((tx) => upsertTag(tx, id, 'gone', digest(100)));
      expect(await db.transaction((tx) => deleteTag(tx, id, 'gone'))).toBe(digest(100));
      expect(await db.transaction((tx) => deleteTag(tx, id, 'gone'))).toBeNull();
    });
  });

  describe('listTags', () => {
    let id: number;
    beforeAll(async () => {
      id = await repositoryWithManifest('t/order', { tags: ['b', 'v1.10', 'a', 'A', 'v1.1', 'Z', '_x', '9'] });
    });

    it('lists tags in byte order: digits, uppercase, underscore, lowercase; "v1.1" before "v1.10"', async () => {
      expect(await listTags(db, id, null, 100)).toEqual(['9', 'A', 'Z', '_x', 'a', 'b', 'v1.1', 'v1.10']);
    });

    it('pages with limit and last, starting after last even when last is not a tag', async () => {
      expect(await listTags(db, id, null, 3)).toEqual(['9', 'A', 'Z']);
      expect(await listTags(db, id, 'Z', 3)).toEqual(['_x', 'a', 'b']);
      expect(await listTags(db, id, 'b', 3)).toEqual(['v1.1', 'v1.10']);
      expect(await listTags(db, id, 'B', 1)).toEqual(['Z']);
      expect(await listTags(db, id, 'v1.10', 3)).toEqual([]);
      expect(await listTags(db, id, null, 0)).toEqual([]);
    });

    it('lists only the tags of the given repository', async () => {
      const other = await repositoryWithManifest('t/other', { tags: ['only'] });
      expect(await listTags(db, other, null, 100)).toEqual(['only']);
    });
  });

  describe('repositories', () => {
    it('ensureRepository creates once and then finds the same row', async () => {
      const first = await db.transaction((tx) => ensureRepository(tx, 'r/ensure'));
      const second = await db.transaction((tx) => ensureRepository(tx, 'r/ensure'));
      expect(first.created).toBe(true);
      expect(second).toEqual({ id: first.id, name: 'r/ensure', created: false });
      expect(await findRepository(db, 'r/ensure')).toEqual({ id: first.id, name: 'r/ensure' });
      expect(await findRepository(db, 'r/none')).toBeNull();
    });

    it('lists repositories in byte order after last', async () => {
      for (const name of ['zz/b', 'zz/B', 'zz/a']) await db.transaction((tx) => ensureRepository(tx, name));
      const all = await listRepositories(db, 'zz', 10);
      expect(all).toEqual(['zz/B', 'zz/a', 'zz/b']);
      expect(await listRepositories(db, 'zz/B', 1)).toEqual(['zz/a']);
    });
  });

  describe('blobs', () => {
    it('links a blob once, finds it only in repositories that link it, and unlinks it once', async () => {
      const [a, b] = await db.transaction(async (tx) => [await ensureRepository(tx, 'b/a'), await ensureRepository(tx, 'b/b')]);
      await db.transaction(async (tx) => {
        await insertBlob(tx, digest(70), 7);
        await insertBlob(tx, digest(70), 7);
        expect(await linkBlob(tx, a.id, digest(70))).toBe(true);
        expect(await linkBlob(tx, a.id, digest(70))).toBe(false);
      });
      expect(await findRepositoryBlob(db, 'b/a', digest(70))).toEqual({ digest: digest(70), size: 7 });
      expect(await findRepositoryBlob(db, 'b/b', digest(70))).toBeNull();
      expect(await missingRepositoryBlobs(db, b.id, [digest(70), digest(71)])).toEqual([digest(70), digest(71)]);
      expect(await missingRepositoryBlobs(db, a.id, [digest(70), digest(71)])).toEqual([digest(71)]);
      expect(await missingRepositoryBlobs(db, a.id, [])).toEqual([]);
      expect(await db.transaction((tx) => unlinkBlob(tx, a.id, digest(70)))).toBe(true);
      expect(await db.transaction((tx) => unlinkBlob(tx, a.id, digest(70)))).toBe(false);
      expect(await lockBlob(db, digest(999))).toBeNull();
    });
  });

  describe('upload leases', () => {
    let repositoryId: number;
    beforeAll(async () => {
      repositoryId = (await db.transaction((tx) => ensureRepository(tx, 'u/leases'))).id;
      await createUpload(db, UPLOAD_1, repositoryId, 'sha256');
      await createUpload(db, UPLOAD_2, repositoryId, 'sha512');
    });

    it('claims a fresh session at offset 0 and refuses a second claim while the lease is held', async () => {
      const claimed = await claimUpload(db, UPLOAD_1, 0, 60_000);
      expect(claimed).toEqual({ id: UPLOAD_1, repositoryId, offset: 0, algorithm: 'sha256', hashState: null, principal: '' });
      expect(await claimUpload(db, UPLOAD_1, 0, 60_000)).toBeNull();
    });

    it('releases the lease when progress is recorded, and then claims only at the new offset', async () => {
      await advanceUpload(db, UPLOAD_1, 100, Buffer.from([1, 2, 3]));
      expect(await claimUpload(db, UPLOAD_1, 0, 60_000)).toBeNull();
      const claimed = await claimUpload(db, UPLOAD_1, 100, 60_000);
      expect(claimed?.offset).toBe(100);
      expect(claimed?.hashState).toEqual(Buffer.from([1, 2, 3]));
      expect(Buffer.isBuffer(claimed?.hashState)).toBe(true);
      await releaseUpload(db, UPLOAD_1);
    });

    it('refuses a claim at an offset the session is not at, even with no lease held', async () => {
      expect(await claimUpload(db, UPLOAD_2, 5, 60_000)).toBeNull();
      expect(await claimUpload(db, UPLOAD_2, 0, 60_000)).not.toBeNull();
      await releaseUpload(db, UPLOAD_2);
    });

    it('lets a claim through after releaseUpload, and after a lease has expired', async () => {
      expect(await claimUpload(db, UPLOAD_2, 0, 60_000)).not.toBeNull();
      await releaseUpload(db, UPLOAD_2);
      // A lease that ends in the past is expired from the start.
      expect(await claimUpload(db, UPLOAD_2, 0, -1_000)).not.toBeNull();
      expect(await claimUpload(db, UPLOAD_2, 0, 60_000)).not.toBeNull();
      await releaseUpload(db, UPLOAD_2);
    });

    it('finds a session only under its own repository, and deletes it once', async () => {
      expect((await findUpload(db, 'u/leases', UPLOAD_2))?.algorithm).toBe('sha512');
      await db.transaction((tx) => ensureRepository(tx, 'u/elsewhere'));
      expect(await findUpload(db, 'u/elsewhere', UPLOAD_2)).toBeNull();
      expect(await deleteUpload(db, UPLOAD_2)).toBe(true);
      expect(await deleteUpload(db, UPLOAD_2)).toBe(false);
      expect(await claimUpload(db, UPLOAD_2, 0, 60_000)).toBeNull();
    });
  });

  describe('garbage-collection review queues', () => {
    async function blobQueue(d: string) {
      return (await db.query<{ review_after: Date; reason: string }>(`SELECT review_after, reason FROM gc_blob_review_queue WHERE digest = $1`, [d])).rows;
    }

    it('queueBlobReview upserts: queuing again postpones review_after and replaces the reason', async () => {
      await queueBlobReview(db, [digest(300)], 'unlinked', 1_000);
      const [first] = await blobQueue(digest(300));
      await queueBlobReview(db, [digest(300)], 'manifest deleted', 3_600_000);
      const rows = await blobQueue(digest(300));
      expect(rows).toHaveLength(1);
      expect(rows[0].reason).toBe('manifest deleted');
      expect(rows[0].review_after.getTime()).toBeGreaterThan(first.review_after.getTime());
    });

    it('queueBlobReview accepts duplicates in one call and an empty list', async () => {
      await queueBlobReview(db, [digest(301), digest(301), digest(302)], 'x', 60_000);
      expect(await count(`gc_blob_review_queue WHERE digest = ANY($1::text[])`, [[digest(301), digest(302)]])).toBe(2);
      await expect(queueBlobReview(db, [], 'x', 60_000)).resolves.toBeUndefined();
    });

    it('queueManifestReview upserts per repository', async () => {
      const repo = await db.transaction((tx) => ensureRepository(tx, 'gc/manifests'));
      await queueManifestReview(db, repo.id, [digest(400), digest(400)], 'untagged', 1_000);
      await queueManifestReview(db, repo.id, [digest(400)], 'untagged again', 3_600_000);
      const rows = (await db.query<{ reason: string }>(`SELECT reason FROM gc_manifest_review_queue WHERE repository_id = $1`, [repo.id])).rows;
      expect(rows).toEqual([{ reason: 'untagged again' }]);
    });
  });
});
