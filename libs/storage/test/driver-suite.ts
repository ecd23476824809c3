/**
 * The shared driver test suite: every BlobStore driver calls `describeBlobStoreDriver` from its spec, so all
 * drivers prove the same contract. Only imported by tests.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { digestOf } from '@lading/oci';
import { BlobNotFoundError, BlobStore, InvalidOffsetError, blobKey, canWriteDirect } from '../src/blob-store';

/** A driver under test and how to dispose of what it created. */
export interface DriverUnderTest {
  store: BlobStore;
  cleanup(): Promise<void>;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sha256(data: Buffer): string {
  return digestOf(data);
}

/** Declares the BlobStore contract tests for one driver. */
export function describeBlobStoreDriver(name: string, makeDriver: () => Promise<DriverUnderTest>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let driver: DriverUnderTest;
    let store: BlobStore;
    beforeEach(async () => {
      driver = await makeDriver();
      store = driver.store;
    });
    afterEach(async () => driver.cleanup());

    it('commits an upload written in one piece and reads it back byte for byte', async () => {
      const data = randomBytes(300_000);
      const id = randomUUID();
      expect(await store.writeUpload(id, 0, Readable.from([data]))).toBe(data.length);
      const key = blobKey(sha256(data));
      await store.commitUpload(id, key, data.length);
      expect(await store.stat(key)).toEqual({ size: data.length });
      expect((await readAll(await store.read(key))).equals(data)).toBe(true);
    });

    it('appends chunks at their offsets and replaces a retried chunk instead of duplicating it', async () => {
      const a = randomBytes(1000);
      const b = randomBytes(2000);
      const id = randomUUID();
      await store.writeUpload(id, 0, Readable.from([a]));
      await store.writeUpload(id, a.length, Readable.from([randomBytes(500)])); // a chunk that failed midway
      await store.writeUpload(id, a.length, Readable.from([b])); // the retry
      const key = blobKey(sha256(Buffer.concat([a, b])));
      await store.commitUpload(id, key, a.length + b.length);
      expect((await readAll(await store.read(key))).equals(Buffer.concat([a, b]))).toBe(true);
    });

    it('refuses a write that starts past the stored data', async () => {
      const id = randomUUID();
      await store.writeUpload(id, 0, Readable.from([randomBytes(10)]));
      await expect(store.writeUpload(id, 11, Readable.from([randomBytes(10)]))).rejects.toBeInstanceOf(InvalidOffsetError);
    });

    it('commits only the first size bytes of an upload', async () => {
      const data = randomBytes(100);
      const id = randomUUID();
      await store.writeUpload(id, 0, Readable.from([data]));
      const key = blobKey(sha256(data.subarray(0, 60)));
      await store.commitUpload(id, key, 60);
      expect(await store.stat(key)).toEqual({ size: 60 });
    });

    it('commits an empty upload as an empty object', async () => {
      const id = randomUUID();
      await store.writeUpload(id, 0, Readable.from([]));
      const key = blobKey(sha256(Buffer.alloc(0)));
      await store.commitUpload(id, key, 0);
      expect(await store.stat(key)).toEqual({ size: 0 });
      expect((await readAll(await store.read(key))).length).toBe(0);
    });

    it('treats committing content that already exists as success and keeps the existing object', async () => {
      const data = randomBytes(64);
      const key = blobKey(sha256(data));
      for (let i = 0; i < 2; i++) {
        const id = randomUUID();
        await store.writeUpload(id, 0, Readable.from([data]));
        await store.commitUpload(id, key, data.length);
      }
      expect((await readAll(await store.read(key))).equals(data)).toBe(true);
    });

    it('reads inclusive byte ranges', async () => {
      const data = randomBytes(5000);
      const id = randomUUID();
      await store.writeUpload(id, 0, Readable.from([data]));
      const key = blobKey(sha256(data));
      await store.commitUpload(id, key, data.length);
      expect((await readAll(await store.read(key, { start: 10, end: 19 }))).equals(data.subarray(10, 20))).toBe(true);
      expect((await readAll(await store.read(key, { start: 4999, end: 4999 }))).equals(data.subarray(4999))).toBe(true);
    });

    it('answers null to stat and BlobNotFoundError to read for a missing key', async () => {
      const key = blobKey(sha256(randomBytes(8)));
      expect(await store.stat(key)).toBeNull();
      await expect(store.read(key)).rejects.toBeInstanceOf(BlobNotFoundError);
    });

    it('deletes objects and uploads idempotently', async () => {
      const data = randomBytes(32);
      const id = randomUUID();
      await store.writeUpload(id, 0, Readable.from([data]));
      const key = blobKey(sha256(data));
      await store.commitUpload(id, key, data.length);
      await store.delete(key);
      await store.delete(key);
      expect(await store.stat(key)).toBeNull();
      await store.deleteUpload(randomUUID());
    });

    it('streams a large upload through without holding it whole', async () => {
      const piece = randomBytes(1024 * 1024);
      const hash = createHash('sha256');
      async function* pieces(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 24; i++) {
          hash.update(piece);
          yield piece;
        }
      }
      const id = randomUUID();
      expect(await store.writeUpload(id, 0, Readable.from(pieces()))).toBe(24 * piece.length);
      const key = blobKey(`sha256:${hash.digest('hex')}`);
      await store.commitUpload(id, key, 24 * piece.length);
      const check = createHash('sha256');
      for await (const chunk of await store.read(key)) check.update(chunk as Buffer);
      expect(`sha256:${check.digest('hex')}`).toBe(`sha256:${key.split('/').pop()}`);
    });

    // Optional capability (DirectWriteStore): a driver without writeObject has nothing to prove here.
    it('writes an object straight to its key, out of sight until committed, small or of many parts', async () => {
      if (!canWriteDirect(store)) return;
      const piece = randomBytes(1024 * 1024);
      for (const pieces of [1, 20]) {
        const data = Buffer.concat(Array.from({ length: pieces }, (_, i) => (i === pieces - 1 ? randomBytes(1000) : piece)));
        const key = blobKey(sha256(data));
        const pending = await store.writeObject(key, Readable.from(Array.from({ length: pieces }, (_, i) => (i === pieces - 1 ? data.subarray(i * piece.length) : piece))));
        expect(pending.size).toBe(data.length);
        expect(await store.stat(key)).toBeNull();
        await expect(store.read(key)).rejects.toBeInstanceOf(BlobNotFoundError);
        await pending.commit();
        expect(await store.stat(key)).toEqual({ size: data.length });
        expect((await readAll(await store.read(key))).equals(data)).toBe(true);
      }
    });

    it('leaves the key as it was when a direct write is aborted, and keeps an object already there on commit', async () => {
      if (!canWriteDirect(store)) return;
      const data = randomBytes(10 * 1024 * 1024);
      const key = blobKey(sha256(data));
      await (await store.writeObject(key, Readable.from([data]))).abort();
      expect(await store.stat(key)).toBeNull();
      const first = await store.writeObject(key, Readable.from([data]));
      const second = await store.writeObject(key, Readable.from([data.subarray(0, 1000)]));
      await first.commit();
      await second.commit(); // the same key again: what is there stays
      expect((await readAll(await store.read(key))).equals(data)).toBe(true);
    });

    it('stores nothing when the source of a direct write fails midway', async () => {
      if (!canWriteDirect(store)) return;
      const key = blobKey(sha256(randomBytes(16)));
      async function* broken(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 10; i++) yield randomBytes(1024 * 1024);
        throw new Error('client went away');
      }
      await expect(store.writeObject(key, Readable.from(broken()))).rejects.toThrow('client went away');
      expect(await store.stat(key)).toBeNull();
    });

    it('answers ping while the backing store is reachable', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
