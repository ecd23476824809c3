import { EVENT_TYPES, EventContext } from '@lading/events';
import * as meta from '@lading/metadata';
import { parseDigest } from '@lading/oci';
import {
  TestBlob,
  TestDeps,
  TestManifest,
  createTestDeps,
  failingInTransactions,
  imageIndex,
  imageManifest,
  makeBlob,
  makeManifest,
  ociRefusal,
  outboxEvents,
  seedBlobs,
  seedImage,
} from '@lading/testing';
import { ManifestPush, ManifestWriteDeps, pushManifest, removeManifest, removeTag } from './manifest-writes';

const context: EventContext = { actor: { name: 'alice', type: 'user' }, request: null };

describe('manifest writes', () => {
  let deps: TestDeps;
  let writes: ManifestWriteDeps;

  beforeAll(async () => {
    deps = await createTestDeps();
    writes = { db: deps.db, events: deps.events, reviewDelayMs: 60_000 };
  });
  afterAll(async () => deps.close());

  const seed = (repository: string, blobs: TestBlob[]) => seedBlobs(deps, repository, blobs);
  const image = (repository: string, extra: Record<string, unknown> = {}) => seedImage(deps, repository, extra);

  function push(repository: string, m: TestManifest, changes: Partial<ManifestPush> = {}): ManifestPush {
    return { repository, body: m.body, contentType: m.mediaType, expectedDigest: null, tags: [], context, ...changes };
  }

  const outbox = (repository: string) => outboxEvents(deps.db, repository);

  async function manifestReviews(repository: string): Promise<Array<{ digest: string; reason: string }>> {
    const r = await deps.db.query<{ digest: string; reason: string }>(
      `SELECT q.digest, q.reason FROM gc_manifest_review_queue q JOIN repositories r ON r.id = q.repository_id WHERE r.name = $1 ORDER BY q.digest`,
      [repository],
    );
    return r.rows;
  }

  describe('pushManifest', () => {
    it('stores a manifest with its tag and appends manifest.pushed then tag.updated describing it', async () => {
      const m = await image('push/app');
      const pushed = await pushManifest(writes, push('push/app', m, { tags: ['v1'] }));
      expect(pushed).toEqual({ digest: m.digest, subjectDigest: null, tags: ['v1'] });
      expect((await meta.findManifestByTag(deps.db, 'push/app', 'v1'))?.digest).toBe(m.digest);
      const events = await outbox('push/app');
      expect(events.map((e) => e.type)).toEqual([EVENT_TYPES.manifestPushed, EVENT_TYPES.tagUpdated]);
      const [pushedEvent, tagged] = events;
      expect(pushedEvent.subject).toBe(`push/app@${m.digest}`);
      expect(pushedEvent.data).toMatchObject({ digest: m.digest, mediaType: m.mediaType, size: m.body.length, tag: 'v1', actor: context.actor });
      const doc = m.doc as { config: { digest: string }; layers: Array<{ digest: string }> };
      expect(pushedEvent.data.references.map((r) => r.digest)).toEqual([doc.config.digest, doc.layers[0].digest]);
      expect(tagged.subject).toBe('push/app:v1');
      expect(tagged.data).toMatchObject({ digest: m.digest, tag: 'v1', previousDigest: null });
      // Tagged: nothing to review.
      expect(await manifestReviews('push/app')).toEqual([]);
    });

    it('creates the repository with its repository.created event, and queues an untagged manifest for review', async () => {
      const empty = imageIndex([]);
      await pushManifest(writes, push('push/new', empty));
      expect((await outbox('push/new')).map((e) => e.type)).toEqual([EVENT_TYPES.repositoryCreated, EVENT_TYPES.manifestPushed]);
      expect(await manifestReviews('push/new')).toEqual([{ digest: empty.digest, reason: 'pushed untagged' }]);
    });

    it('accepts a push by digest when the digest matches, in the digest\'s algorithm', async () => {
      const m = await image('push/bydigest');
      const sha512 = makeManifest(m.doc, 'sha512');
      const pushed = await pushManifest(writes, push('push/bydigest', sha512, { expectedDigest: parseDigest(sha512.digest) }));
      expect(pushed.digest).toBe(sha512.digest);
      expect(pushed.digest.startsWith('sha512:')).toBe(true);
    });

    it('appends referrer.attached for a manifest with a subject and reports the subject', async () => {
      const subject = await image('push/referrers');
      await pushManifest(writes, push('push/referrers', subject, { tags: ['v1'] }));
      const artifact = await image('push/referrers', {
        artifactType: 'application/vnd.example.sbom',
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.body.length },
      });
      const before = (await outbox('push/referrers')).length;
      const pushed = await pushManifest(writes, push('push/referrers', artifact));
      expect(pushed.subjectDigest).toBe(subject.digest);
      const added = (await outbox('push/referrers')).slice(before);
      expect(added.map((e) => e.type)).toEqual([EVENT_TYPES.manifestPushed, EVENT_TYPES.referrerAttached]);
      expect(added[1].subject).toBe(`push/referrers@${subject.digest}`);
      expect(added[1].data).toMatchObject({ digest: artifact.digest, artifactType: 'application/vnd.example.sbom', subject: { digest: subject.digest } });
    });

    it('moves a tag with tag.updated naming the previous digest, queues the old target, and writes nothing for a repeat', async () => {
      const first = await image('push/move');
      const second = await image('push/move');
      await pushManifest(writes, push('push/move', first, { tags: ['latest'] }));
      await pushManifest(writes, push('push/move', second, { tags: ['latest'] }));
      const events = await outbox('push/move');
      expect(events.map((e) => e.type)).toEqual([EVENT_TYPES.manifestPushed, EVENT_TYPES.tagUpdated, EVENT_TYPES.manifestPushed, EVENT_TYPES.tagUpdated]);
      expect(events[3].data).toMatchObject({ tag: 'latest', digest: second.digest, previousDigest: first.digest });
      expect(await manifestReviews('push/move')).toEqual([{ digest: first.digest, reason: 'tag moved' }]);
      // The same manifest under the same tag again: no change, so no event.
      await pushManifest(writes, push('push/move', second, { tags: ['latest'] }));
      expect(await outbox('push/move')).toHaveLength(4);
    });

    it('refuses a manifest whose blob the repository does not hold (MANIFEST_BLOB_UNKNOWN) and writes nothing', async () => {
      const held = makeBlob('{"held":true}');
      const missing = makeBlob(128);
      await seed('push/missing', [held]);
      const m = imageManifest(held, [missing]);
      const err = await ociRefusal(pushManifest(writes, push('push/missing', m, { tags: ['v1'] })));
      expect(err.code).toBe('MANIFEST_BLOB_UNKNOWN');
      expect(err.detail).toEqual({ digest: missing.digest });
      expect(await meta.findManifestByDigest(deps.db, 'push/missing', m.digest)).toBeNull();
      expect(await outbox('push/missing')).toEqual([]);
    });

    it('refuses an index whose child manifest is missing (MANIFEST_BLOB_UNKNOWN) and writes nothing', async () => {
      const child = await image('push/index');
      const index = imageIndex([child]);
      const err = await ociRefusal(pushManifest(writes, push('push/index', index, { tags: ['multi'] })));
      expect(err.code).toBe('MANIFEST_BLOB_UNKNOWN');
      expect(err.detail).toEqual({ digest: child.digest });
      expect(await outbox('push/index')).toEqual([]);
    });

    it('stores what enters through a pull-through cache without its blobs and children, references recorded, events marked', async () => {
      const proxy = { namespace: 'hub', upstream: 'https://registry.example' };
      const config = makeBlob('{"lazy":true}');
      const layer = makeBlob(256);
      const child = imageManifest(config, [layer]);
      const index = imageIndex([child]);
      await pushManifest(writes, push('hub/lazy', index, { tags: ['multi'], context: { ...context, proxy } }));
      await pushManifest(writes, push('hub/lazy', child, { context: { ...context, proxy } }));
      expect((await meta.findManifestByTag(deps.db, 'hub/lazy', 'multi'))?.digest).toBe(index.digest);
      expect(await meta.findRepositoryBlob(deps.db, 'hub/lazy', layer.digest)).toBeNull();
      const references = await meta.manifestsReferencingBlob(deps.db, layer.digest, 10);
      expect(references.map((r) => [r.repository, r.digest])).toEqual([['hub/lazy', child.digest]]);
      const events = await outbox('hub/lazy');
      expect(events.map((e) => e.type)).toEqual([EVENT_TYPES.repositoryCreated, EVENT_TYPES.manifestPushed, EVENT_TYPES.tagUpdated, EVENT_TYPES.manifestPushed]);
      for (const event of events) expect(event.data.proxy).toEqual(proxy);
      // The same content pushed by a client is checked as always.
      const err = await ociRefusal(pushManifest(writes, push('push/notlazy', child)));
      expect(err.code).toBe('MANIFEST_BLOB_UNKNOWN');
    });

    it('refuses a body whose digest does not match the reference (DIGEST_INVALID) and writes nothing', async () => {
      const m = await image('push/mismatch');
      const other = makeBlob('not this manifest');
      const err = await ociRefusal(pushManifest(writes, push('push/mismatch', m, { expectedDigest: parseDigest(other.digest) })));
      expect(err.code).toBe('DIGEST_INVALID');
      expect(err.detail).toEqual({ expected: other.digest, actual: m.digest });
      expect(await meta.findManifestByDigest(deps.db, 'push/mismatch', m.digest)).toBeNull();
      expect(await outbox('push/mismatch')).toEqual([]);
    });

    it('refuses a body that is not a manifest (MANIFEST_INVALID) before touching the database', async () => {
      const err = await ociRefusal(pushManifest(writes, push('push/invalid', makeManifest({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json' }))));
      expect(err.code).toBe('MANIFEST_INVALID');
      expect(await meta.findRepository(deps.db, 'push/invalid')).toBeNull();
    });

    it('rolls back the manifest and the events already appended when a later write of the transaction fails', async () => {
      const m = await image('push/rollback');
      await expect(pushManifest({ ...writes, db: failingInTransactions(deps.db, /INSERT INTO tags/) }, push('push/rollback', m, { tags: ['v1'] }))).rejects.toThrow('injected failure');
      expect(await meta.findManifestByDigest(deps.db, 'push/rollback', m.digest)).toBeNull();
      expect(await outbox('push/rollback')).toEqual([]);
    });
  });

  describe('removeTag', () => {
    it('deletes a tag with tag.deleted, queues its manifest for review, and keeps the manifest', async () => {
      const m = await image('untag/app');
      await pushManifest(writes, push('untag/app', m, { tags: ['v1'] }));
      const before = (await outbox('untag/app')).length;
      expect(await removeTag(writes, { repository: 'untag/app', tag: 'v1', context })).toEqual({ digest: m.digest });
      const added = (await outbox('untag/app')).slice(before);
      expect(added.map((e) => [e.type, e.subject])).toEqual([[EVENT_TYPES.tagDeleted, 'untag/app:v1']]);
      expect(added[0].data).toMatchObject({ tag: 'v1', digest: m.digest });
      expect(await meta.findManifestByTag(deps.db, 'untag/app', 'v1')).toBeNull();
      expect(await meta.findManifestByDigest(deps.db, 'untag/app', m.digest)).not.toBeNull();
      expect(await manifestReviews('untag/app')).toEqual([{ digest: m.digest, reason: 'tag deleted' }]);
    });

    it('refuses a tag that does not exist (MANIFEST_UNKNOWN) and writes no event', async () => {
      const m = await image('untag/missing');
      await pushManifest(writes, push('untag/missing', m, { tags: ['v1'] }));
      const before = await outbox('untag/missing');
      const err = await ociRefusal(removeTag(writes, { repository: 'untag/missing', tag: 'v2', context }));
      expect(err.code).toBe('MANIFEST_UNKNOWN');
      expect(err.detail).toEqual({ reference: 'v2' });
      expect(await outbox('untag/missing')).toEqual(before);
    });

    it('refuses a tag of a repository that does not exist (MANIFEST_UNKNOWN)', async () => {
      expect((await ociRefusal(removeTag(writes, { repository: 'untag/nowhere', tag: 'v1', context }))).code).toBe('MANIFEST_UNKNOWN');
      expect(await meta.findRepository(deps.db, 'untag/nowhere')).toBeNull();
    });
  });

  describe('removeManifest', () => {
    it('deletes a manifest with its tags: tag.deleted for each, then manifest.deleted; its blobs go to review', async () => {
      const m = await image('delete/app');
      await pushManifest(writes, push('delete/app', m, { tags: ['b', 'a'] }));
      const before = (await outbox('delete/app')).length;
      const deleted = await removeManifest(writes, { repository: 'delete/app', digest: m.digest, context });
      expect(deleted.tags).toEqual(['a', 'b']);
      const added = (await outbox('delete/app')).slice(before);
      expect(added.map((e) => [e.type, e.subject])).toEqual([
        [EVENT_TYPES.tagDeleted, 'delete/app:a'],
        [EVENT_TYPES.tagDeleted, 'delete/app:b'],
        [EVENT_TYPES.manifestDeleted, `delete/app@${m.digest}`],
      ]);
      expect(added[2].data).toMatchObject({ digest: m.digest, mediaType: m.mediaType, size: m.body.length });
      expect(await meta.findManifestByDigest(deps.db, 'delete/app', m.digest)).toBeNull();
      const doc = m.doc as { config: { digest: string }; layers: Array<{ digest: string }> };
      const reviewed = await deps.db.query<{ digest: string; reason: string }>(
        `SELECT digest, reason FROM gc_blob_review_queue WHERE digest = ANY($1::text[]) ORDER BY digest`,
        [[doc.config.digest, doc.layers[0].digest]],
      );
      expect(reviewed.rows.map((r) => r.reason)).toEqual(['manifest deleted', 'manifest deleted']);
    });

    it('queues an index\'s children for review when the index is deleted', async () => {
      const child = await image('delete/index');
      await pushManifest(writes, push('delete/index', child, { tags: ['child'] }));
      const index = imageIndex([child]);
      await pushManifest(writes, push('delete/index', index, { tags: ['multi'] }));
      await removeManifest(writes, { repository: 'delete/index', digest: index.digest, context });
      expect(await manifestReviews('delete/index')).toContainEqual({ digest: child.digest, reason: 'parent index deleted' });
    });

    it('refuses a manifest that does not exist (MANIFEST_UNKNOWN) and writes no event', async () => {
      const m = await image('delete/missing');
      await pushManifest(writes, push('delete/missing', m, { tags: ['v1'] }));
      const before = await outbox('delete/missing');
      const absent = makeBlob('absent manifest').digest;
      const err = await ociRefusal(removeManifest(writes, { repository: 'delete/missing', digest: absent, context }));
      expect(err.code).toBe('MANIFEST_UNKNOWN');
      expect(err.detail).toEqual({ reference: absent });
      expect(await outbox('delete/missing')).toEqual(before);
      expect(await ociRefusal(removeManifest(writes, { repository: 'delete/nowhere', digest: absent, context }))).toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    });
  });
});
