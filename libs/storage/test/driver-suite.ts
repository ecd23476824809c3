/**
 * The shared driver test suite: every BlobStore driver calls `describeBlobStoreDriver` from its spec, so all
 * drivers prove the same contract. Only imported by tests.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { digestOf } from '@lading/oci';
import { BlobNotFoundError, BlobStore, InvalidOffsetError, blobKey } from '../src/blob-store';

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

    it('answers ping while the backing store is reachable', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
