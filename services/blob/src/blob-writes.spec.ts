import { Readable } from 'node:stream';
import { EVENT_TYPES, EventContext } from '@lading/events';
import * as meta from '@lading/metadata';
import { parseDigest } from '@lading/oci';
import { blobKey } from '@lading/storage';
import { TestBlob, TestDeps, createTestDeps, failingInTransactions, makeBlob, ociRefusal, outboxEvents, snapshotState } from '@lading/testing';
import { BlobWriteDeps, mountBlob, removeBlob, storeBlob } from './blob-writes';

const context: EventContext = { actor: { name: 'alice', type: 'user' }, request: null };

describe('blob writes', () => {
  let deps: TestDeps;
  let writes: BlobWriteDeps;

  beforeAll(async () => {
    deps = await createTestDeps();
    writes = { db: deps.db, store: deps.store, events: deps.events, reviewDelayMs: 60_000 };
  });
  afterAll(async () => deps.close());

  const outbox = (repository: string) => outboxEvents(deps.db, repository);
  const snapshot = () => snapshotState(deps.db, deps.storageRoot);

  function store(repository: string, blob: TestBlob) {
    return storeBlob(writes, { repository, digest: parseDigest(blob.digest), body: Readable.from([blob.data]), context });
  }

  async function blobReview(digest: string): Promise<string | null> {
    const r = await deps.db.query<{ reason: string }>(`SELECT reason FROM gc_blob_review_queue WHERE digest = $1`, [digest]);
    return r.rows[0]?.reason ?? null;
  }

  describe('storeBlob', () => {
    it('stores a whole blob, links it, and appends repository.created then blob.uploaded describing it', async () => {
      const blob = makeBlob(40_000);
      expect(await store('store/app', blob)).toEqual({ digest: blob.digest, size: blob.size });
      expect(await deps.store.stat(blobKey(blob.digest))).toMatchObject({ size: blob.size });
      expect(await meta.findRepositoryBlob(deps.db, 'store/app', blob.digest)).toEqual({ digest: blob.digest, size: blob.size });
      const events = await outbox('store/app');
      expect(events.map((e) => e.type)).toEqual([EVENT_TYPES.repositoryCreated, EVENT_TYPES.blobUploaded]);
      expect(events[1].subject).toBe(`store/app@${blob.digest}`);
      expect(events[1].data).toMatchObject({ digest: blob.digest, size: blob.size, actor: context.actor });
      // No manifest references it yet: the collector looks at it later.
      expect(await blobReview(blob.digest)).toBe('upload completed');
    });

    it('refuses bytes that do not match the digest (DIGEST_INVALID) and leaves nothing behind', async () => {
      const blob = makeBlob(1000);
      const claimed = makeBlob(1000);
      const before = await snapshot();
      const err = await ociRefusal(storeBlob(writes, { repository: 'store/mismatch', digest: parseDigest(claimed.digest), body: Readable.from([blob.data]), context }));
      expect(err.code).toBe('DIGEST_INVALID');
      expect(err.detail).toEqual({ expected: claimed.digest, actual: blob.digest });
      expect(await snapshot()).toEqual(before);
    });

    it('records neither the blob nor its events when its transaction fails', async () => {
      const blob = makeBlob(2000);
      await expect(
        storeBlob({ ...writes, db: failingInTransactions(deps.db, /INSERT INTO gc_blob_review_queue/) }, {
          repository: 'store/rollback',
          digest: parseDigest(blob.digest),
          body: Readable.from([blob.data]),
          context,
        }),
      ).rejects.toThrow('injected failure');
      expect(await meta.findRepository(deps.db, 'store/rollback')).toBeNull();
      expect(await outbox('store/rollback')).toEqual([]);
    });
  });

  describe('mountBlob', () => {
    it('links a blob from the named repository with blob.mounted naming the source, once', async () => {
      const blob = makeBlob(3000);
      await store('mount/source', blob);
      expect(await mountBlob(writes, { repository: 'mount/target', digest: blob.digest, from: 'mount/source', context })).toBe(true);
      expect(await meta.findRepositoryBlob(deps.db, 'mount/target', blob.digest)).not.toBeNull();
      const events = await outbox('mount/target');
      expect(events.map((e) => e.type)).toEqual([EVENT_TYPES.repositoryCreated, EVENT_TYPES.blobMounted]);
      expect(events[1].data).toMatchObject({ digest: blob.digest, size: blob.size, fromRepository: 'mount/source' });
      // Mounted again: already linked, nothing changes, no event.
      expect(await mountBlob(writes, { repository: 'mount/target', digest: blob.digest, from: 'mount/source', context })).toBe(true);
      expect(await outbox('mount/target')).toHaveLength(2);
    });

    it('links a blob from wherever it is when no source is named', async () => {
      const blob = makeBlob(3000);
      await store('mount/somewhere', blob);
      expect(await mountBlob(writes, { repository: 'mount/anywhere', digest: blob.digest, from: null, context })).toBe(true);
      expect((await outbox('mount/anywhere')).map((e) => e.data.fromRepository)).toEqual([null, null]);
    });

    it('answers false and writes nothing when the source repository does not hold the blob', async () => {
      const held = makeBlob(500);
      const elsewhere = makeBlob(500);
      await store('mount/has-one', held);
      await store('mount/has-other', elsewhere);
      const before = await snapshot();
      expect(await mountBlob(writes, { repository: 'mount/refused', digest: elsewhere.digest, from: 'mount/has-one', context })).toBe(false);
      expect(await mountBlob(writes, { repository: 'mount/refused', digest: makeBlob(10).digest, from: null, context })).toBe(false);
      expect(await snapshot()).toEqual(before);
    });

    it('answers whether the repository holds the blob when it is its own source, without writing', async () => {
      const blob = makeBlob(700);
      await store('mount/self', blob);
      const before = await snapshot();
      expect(await mountBlob(writes, { repository: 'mount/self', digest: blob.digest, from: 'mount/self', context })).toBe(true);
      expect(await mountBlob(writes, { repository: 'mount/self', digest: makeBlob(7).digest, from: 'mount/self', context })).toBe(false);
      expect(await snapshot()).toEqual(before);
    });
  });

  describe('removeBlob', () => {
    it('unlinks a blob with blob.deleted and queues it for review, keeping the object for the collector', async () => {
      const blob = makeBlob(900);
      await store('remove/app', blob);
      await removeBlob(writes, { repository: 'remove/app', digest: blob.digest, context });
      expect(await meta.findRepositoryBlob(deps.db, 'remove/app', blob.digest)).toBeNull();
      const events = await outbox('remove/app');
      expect(events.map((e) => e.type).slice(-1)).toEqual([EVENT_TYPES.blobDeleted]);
      expect(events[events.length - 1].data).toMatchObject({ digest: blob.digest });
      expect(await blobReview(blob.digest)).toBe('unlinked from repository');
      expect(await deps.store.stat(blobKey(blob.digest))).not.toBeNull();
    });

    it('refuses a blob the repository does not hold, or a repository that does not exist (BLOB_UNKNOWN), writing nothing', async () => {
      const blob = makeBlob(900);
      await store('remove/other', blob);
      const before = await snapshot();
      const err = await ociRefusal(removeBlob(writes, { repository: 'remove/nowhere', digest: blob.digest, context }));
      expect(err.code).toBe('BLOB_UNKNOWN');
      expect(err.detail).toEqual({ digest: blob.digest });
      expect(await snapshot()).toEqual(before);
      await store('remove/holder', makeBlob(5));
      const held = await snapshot();
      expect((await ociRefusal(removeBlob(writes, { repository: 'remove/holder', digest: blob.digest, context }))).code).toBe('BLOB_UNKNOWN');
      expect(await snapshot()).toEqual(held);
    });
  });
});
