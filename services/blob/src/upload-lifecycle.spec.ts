import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { EVENT_TYPES, EventContext } from '@lading/events';
import * as meta from '@lading/metadata';
import { parseDigest } from '@lading/oci';
import { blobKey } from '@lading/storage';
import { TestDeps, createTestDeps, makeBlob, ociRefusal, outboxEvents, snapshotState } from '@lading/testing';
import { UploadChunk, UploadDeps, UploadRef, appendToUpload, discardUpload, findOwnUpload, finishUpload, openUpload } from './upload-lifecycle';

const context: EventContext = { actor: { name: 'alice', type: 'user' }, request: null };

function chunk(data: Buffer, range?: { start: number }): UploadChunk {
  return {
    body: Readable.from([data]),
    contentRange: range ? `${range.start}-${range.start + data.length - 1}` : undefined,
    contentLength: data.length,
  };
}

describe('upload lifecycle', () => {
  let deps: TestDeps;
  let uploads: UploadDeps;

  beforeAll(async () => {
    deps = await createTestDeps();
    uploads = { db: deps.db, store: deps.store, events: deps.events, reviewDelayMs: 60_000, leaseMs: 60_000 };
  });
  afterAll(async () => deps.close());

  const outbox = (repository: string) => outboxEvents(deps.db, repository);
  const snapshot = () => snapshotState(deps.db, deps.storageRoot);

  async function open(repository: string, principal = 'alice'): Promise<UploadRef> {
    const { id } = await openUpload(uploads, { repository, principal, context: () => context });
    return { repository, id, principal };
  }

  describe('openUpload', () => {
    it('opens a session at offset 0, creating the repository with repository.created only the first time', async () => {
      const first = await openUpload(uploads, { repository: 'open/app', principal: 'alice', context: () => context });
      expect(first.repositoryCreated).toBe(true);
      const second = await openUpload(uploads, { repository: 'open/app', principal: 'alice', context: () => context });
      expect(second.repositoryCreated).toBe(false);
      expect(second.id).not.toBe(first.id);
      expect((await outbox('open/app')).map((e) => e.type)).toEqual([EVENT_TYPES.repositoryCreated]);
      const found = await findOwnUpload(deps.db, { repository: 'open/app', id: second.id, principal: 'alice' });
      expect(found).toMatchObject({ id: second.id, offset: 0, hashState: null, principal: 'alice' });
    });
  });

  describe('findOwnUpload', () => {
    it('refuses a malformed id, an unknown session, another principal\'s session and another repository (BLOB_UPLOAD_UNKNOWN)', async () => {
      const ref = await open('find/app');
      for (const wrong of [
        { ...ref, id: 'not-a-uuid' },
        { ...ref, id: randomUUID() },
        { ...ref, principal: 'mallory' },
        { ...ref, repository: 'find/other' },
      ]) {
        expect((await ociRefusal(findOwnUpload(deps.db, wrong))).code).toBe('BLOB_UPLOAD_UNKNOWN');
      }
    });
  });

  describe('appendToUpload and finishUpload', () => {
    it('appends chunks at the session\'s offset and finishes into a blob with blob.uploaded, closing the session', async () => {
      const blob = makeBlob(10_000);
      const ref = await open('chunks/app');
      expect(await appendToUpload(uploads, ref, chunk(blob.data.subarray(0, 4000), { start: 0 }))).toEqual({ id: ref.id, offset: 4000 });
      expect(await appendToUpload(uploads, ref, chunk(blob.data.subarray(4000, 7000)))).toEqual({ id: ref.id, offset: 7000 });
      expect((await findOwnUpload(deps.db, ref)).offset).toBe(7000);
      expect(await finishUpload(uploads, { ref, digest: parseDigest(blob.digest), chunk: chunk(blob.data.subarray(7000), { start: 7000 }), context })).toEqual({
        digest: blob.digest,
        size: blob.size,
      });
      expect(await meta.findRepositoryBlob(deps.db, 'chunks/app', blob.digest)).toEqual({ digest: blob.digest, size: blob.size });
      expect(await deps.store.stat(blobKey(blob.digest))).toMatchObject({ size: blob.size });
      expect((await ociRefusal(findOwnUpload(deps.db, ref))).code).toBe('BLOB_UPLOAD_UNKNOWN');
      const events = await outbox('chunks/app');
      expect(events.map((e) => e.type)).toEqual([EVENT_TYPES.repositoryCreated, EVENT_TYPES.blobUploaded]);
      expect(events[1].data).toMatchObject({ digest: blob.digest, size: blob.size });
    });

    it('finishes a fresh session with the whole blob in the PUT, and one with no last chunk', async () => {
      const whole = makeBlob(5000);
      const ref = await open('finish/app');
      expect(await finishUpload(uploads, { ref, digest: parseDigest(whole.digest), chunk: chunk(whole.data), context })).toEqual({ digest: whole.digest, size: whole.size });
      const streamed = makeBlob(3000);
      const next = await open('finish/app');
      await appendToUpload(uploads, next, chunk(streamed.data));
      expect(await finishUpload(uploads, { ref: next, digest: parseDigest(streamed.digest), chunk: null, context })).toEqual({ digest: streamed.digest, size: streamed.size });
      expect((await outbox('finish/app')).map((e) => e.type)).toEqual([EVENT_TYPES.repositoryCreated, EVENT_TYPES.blobUploaded, EVENT_TYPES.blobUploaded]);
    });

    it('refuses a chunk that does not start at the offset (RANGE_INVALID) and keeps the session where it was', async () => {
      const ref = await open('range/app');
      await appendToUpload(uploads, ref, chunk(Buffer.alloc(100, 1)));
      const err = await ociRefusal(appendToUpload(uploads, ref, chunk(Buffer.alloc(100, 2), { start: 50 })));
      expect(err.code).toBe('RANGE_INVALID');
      expect((await findOwnUpload(deps.db, ref)).offset).toBe(100);
      expect((await ociRefusal(appendToUpload(uploads, { ...ref, principal: 'mallory' }, chunk(Buffer.alloc(1))))).code).toBe('BLOB_UPLOAD_UNKNOWN');
    });

    it('refuses a wrong digest without a last chunk (DIGEST_INVALID), leaving the session as it was and writing no event', async () => {
      const blob = makeBlob(2000);
      const ref = await open('mismatch/keep');
      await appendToUpload(uploads, ref, chunk(blob.data));
      const before = await snapshot();
      const err = await ociRefusal(finishUpload(uploads, { ref, digest: parseDigest(makeBlob(2000).digest), chunk: null, context }));
      expect(err.code).toBe('DIGEST_INVALID');
      expect(await snapshot()).toEqual(before);
      // The client may retry with the right digest.
      expect((await finishUpload(uploads, { ref, digest: parseDigest(blob.digest), chunk: null, context })).size).toBe(2000);
    });

    it('refuses a wrong digest for a whole-blob PUT (DIGEST_INVALID), leaving the fresh session untouched', async () => {
      const ref = await open('mismatch/whole');
      const before = await snapshot();
      const err = await ociRefusal(finishUpload(uploads, { ref, digest: parseDigest(makeBlob(64).digest), chunk: chunk(Buffer.alloc(64, 7)), context }));
      expect(err.code).toBe('DIGEST_INVALID');
      expect(await snapshot()).toEqual(before);
    });

    it('discards a session whose appended last chunk does not match the digest', async () => {
      const ref = await open('mismatch/spoilt');
      await appendToUpload(uploads, ref, chunk(Buffer.alloc(100, 1)));
      const err = await ociRefusal(finishUpload(uploads, { ref, digest: parseDigest(makeBlob(200).digest), chunk: chunk(Buffer.alloc(100, 2), { start: 100 }), context }));
      expect(err.code).toBe('DIGEST_INVALID');
      expect((await ociRefusal(findOwnUpload(deps.db, ref))).code).toBe('BLOB_UPLOAD_UNKNOWN');
      expect((await outbox('mismatch/spoilt')).map((e) => e.type)).toEqual([EVENT_TYPES.repositoryCreated]);
    });
  });

  describe('discardUpload', () => {
    it('cancels a session: its row and bytes go, with no event', async () => {
      const ref = await open('cancel/app');
      await appendToUpload(uploads, ref, chunk(Buffer.alloc(500, 3)));
      const events = await outbox('cancel/app');
      await discardUpload(uploads, ref);
      expect((await ociRefusal(findOwnUpload(deps.db, ref))).code).toBe('BLOB_UPLOAD_UNKNOWN');
      expect(await outbox('cancel/app')).toEqual(events);
    });

    it('refuses to cancel an unknown session, or another principal\'s (BLOB_UPLOAD_UNKNOWN), changing nothing', async () => {
      const ref = await open('cancel/other');
      const before = await snapshot();
      expect((await ociRefusal(discardUpload(uploads, { ...ref, id: randomUUID() }))).code).toBe('BLOB_UPLOAD_UNKNOWN');
      expect((await ociRefusal(discardUpload(uploads, { ...ref, principal: 'mallory' }))).code).toBe('BLOB_UPLOAD_UNKNOWN');
      expect(await snapshot()).toEqual(before);
    });
  });
});
