import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { digestOf, isUnavailable } from '@lading/oci';
import { describeBlobStoreDriver } from '../test/driver-suite';
import { blobKey, STORAGE_UNAVAILABLE, type BlobStore } from './blob-store';
import { markChunksDisposable } from './blob-stream';
import { createFileSyncer, type FileSyncer } from './file-sync';
import { createFilesystemBlobStore } from './filesystem-driver';

describeBlobStoreDriver('filesystem', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'lading-fs-'));
  return { store: await createFilesystemBlobStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});

describeBlobStoreDriver('filesystem, fsync off', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'lading-fs-'));
  return { store: await createFilesystemBlobStore(root, { fsync: false }), cleanup: () => rm(root, { recursive: true, force: true }) };
});

/** One flush the driver asked for, and whether the committed object existed under its key at that moment. */
interface SyncCall {
  kind: 'file' | 'directory' | 'written';
  path: string;
  targetExisted: boolean;
}

/** A FileSyncer that really fsyncs and records each call, relative to the store's root. */
function recordingSyncer(root: string, target: () => string): { syncer: FileSyncer; calls: SyncCall[] } {
  const real = createFileSyncer();
  const calls: SyncCall[] = [];
  const record = (kind: SyncCall['kind'], p: string) => calls.push({ kind, path: path.relative(root, p) || '.', targetExisted: existsSync(path.join(root, target())) });
  return {
    calls,
    syncer: {
      async syncFile(file, handle) {
        record('file', file);
        await real.syncFile(file, handle);
      },
      async syncDirectory(dir) {
        record('directory', dir);
        await real.syncDirectory(dir);
      },
      async syncWritten(file, handle) {
        record('written', file);
        await real.syncWritten(file, handle);
      },
    },
  };
}

describe('filesystem driver', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'lading-fs-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('refuses keys that would escape its root', async () => {
    const store = await createFilesystemBlobStore(root);
    await expect(store.stat('../../etc/passwd')).rejects.toThrow(/escapes/);
  });

  describe('durability (fsync on)', () => {
    let key: string;
    let calls: SyncCall[];
    let store: BlobStore;
    beforeEach(async () => {
      key = '';
      const recording = recordingSyncer(root, () => key);
      calls = recording.calls;
      store = await createFilesystemBlobStore(root, { syncer: recording.syncer });
    });

    it('flushes a monolithic upload before acknowledging it, and every directory its commit changed after the rename', async () => {
      const data = randomBytes(4096);
      key = blobKey(digestOf(data));
      await store.writeUpload('u1', 0, Readable.from([data]));
      expect(calls).toEqual([{ kind: 'file', path: 'uploads/u1', targetExisted: false }]);
      calls.length = 0;
      await store.commitUpload('u1', key, data.length);
      // The first object under the root made blobs/sha256/<prefix>: each new directory's entry lives in its parent.
      const prefix = path.dirname(key);
      expect(calls).toEqual([
        { kind: 'directory', path: prefix, targetExisted: true },
        { kind: 'directory', path: 'blobs/sha256', targetExisted: true },
        { kind: 'directory', path: 'blobs', targetExisted: true },
        { kind: 'directory', path: '.', targetExisted: true },
      ]);
    });

    it('flushes each chunk of a chunked upload as it is acknowledged, then the directories at commit', async () => {
      const a = randomBytes(1000);
      const b = randomBytes(2000);
      const whole = Buffer.concat([a, b]);
      key = blobKey(digestOf(whole));
      await store.writeUpload('u2', 0, Readable.from([a]));
      await store.writeUpload('u2', a.length, Readable.from([b]));
      expect(calls).toEqual([
        { kind: 'file', path: 'uploads/u2', targetExisted: false },
        { kind: 'file', path: 'uploads/u2', targetExisted: false },
      ]);
      calls.length = 0;
      await store.commitUpload('u2', key, whole.length);
      expect(calls[0]).toEqual({ kind: 'directory', path: path.dirname(key), targetExisted: true });
      expect(calls.every((c) => c.kind === 'directory' && c.targetExisted)).toBe(true);
    });

    it('flushes only the target directory when the directory already existed', async () => {
      const data = randomBytes(500);
      key = blobKey(digestOf(data));
      await mkdir(path.join(root, path.dirname(key)), { recursive: true });
      await store.writeUpload('u4', 0, Readable.from([data]));
      calls.length = 0;
      await store.commitUpload('u4', key, data.length);
      expect(calls).toEqual([{ kind: 'directory', path: path.dirname(key), targetExisted: true }]);
    });

    it('flushes an upload it cut to size before renaming it into place', async () => {
      const data = randomBytes(100);
      key = blobKey(digestOf(data.subarray(0, 60)));
      await store.writeUpload('u3', 0, Readable.from([data]));
      calls.length = 0;
      await store.commitUpload('u3', key, 60);
      expect(calls[0]).toEqual({ kind: 'file', path: 'uploads/u3', targetExisted: false });
      expect(calls.slice(1).every((c) => c.kind === 'directory' && c.targetExisted)).toBe(true);
    });

    it('flushes a large upload while it arrives, and once more in full before acknowledging it', async () => {
      const flushing = recordingSyncer(root, () => 'none');
      const small = await createFilesystemBlobStore(root, { syncer: flushing.syncer, flushEveryBytes: 64 * 1024 });
      const pieces = Array.from({ length: 40 }, () => randomBytes(16 * 1024));
      expect(await small.writeUpload('big', 0, Readable.from(pieces))).toBe(40 * 16 * 1024);
      const kinds = flushing.calls.map((c) => `${c.kind} ${c.path}`);
      // At least one flush ran while the bytes arrived; the full flush came last, after every one of them settled.
      expect(kinds.length).toBeGreaterThan(1);
      expect(kinds.slice(0, -1).every((k) => k === 'written uploads/big')).toBe(true);
      expect(kinds.at(-1)).toBe('file uploads/big');
      expect((await readFile(path.join(root, 'uploads/big'))).equals(Buffer.concat(pieces))).toBe(true);
    });

    it('flushes nothing at commit when the object is already stored', async () => {
      const first = randomBytes(10);
      key = blobKey(digestOf(first));
      await store.writeUpload('f', 0, Readable.from([first]));
      await store.commitUpload('f', key, first.length);
      // Same key again from another upload: nothing new is committed, nothing to flush beyond the upload's bytes.
      calls.length = 0;
      await store.writeUpload('g', 0, Readable.from([first]));
      await store.commitUpload('g', key, first.length);
      expect(calls).toEqual([{ kind: 'file', path: 'uploads/g', targetExisted: true }]);
    });
  });

  describe('a write that fails', () => {
    it('on a full disk (a real ENOSPC, through /dev/full) rejects as the store being unavailable and leaves no upload behind', async () => {
      // /dev/full answers every write with ENOSPC; the upload's file is made a link to it. No mount, no root needed.
      expect(existsSync('/dev/full')).toBe(true);
      const store = await createFilesystemBlobStore(root);
      await symlink('/dev/full', path.join(root, 'uploads/full'));
      const failure = await store.writeUpload('full', 0, Readable.from([randomBytes(256 * 1024)])).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toMatchObject({ code: STORAGE_UNAVAILABLE, fsCode: 'ENOSPC' });
      expect(isUnavailable(failure)).toBe(true);
      expect(existsSync(path.join(root, 'uploads/full'))).toBe(false);
      // With room again the same upload starts afresh.
      const data = randomBytes(1000);
      expect(await store.writeUpload('full', 0, Readable.from([data]))).toBe(1000);
      expect((await readFile(path.join(root, 'uploads/full'))).equals(data)).toBe(true);
    });

    it('mid-chunk is cut back to the offset it started at, keeping the chunks before it', async () => {
      const store = await createFilesystemBlobStore(root);
      const first = randomBytes(3000);
      await store.writeUpload('cut', 0, Readable.from([first]));
      const broken = Readable.from((async function* () {
        yield randomBytes(5000);
        throw new Error('the client went away');
      })());
      await expect(store.writeUpload('cut', first.length, broken)).rejects.toThrow('the client went away');
      expect((await readFile(path.join(root, 'uploads/cut'))).equals(first)).toBe(true);
    });
  });

  it("frees each chunk of a source marked disposable once written, and leaves an unmarked source's chunks alone", async () => {
    const store = await createFilesystemBlobStore(root);
    const pieces = Array.from({ length: 8 }, () => Buffer.from(randomBytes(64 * 1024)));
    const copies = pieces.map((p) => Buffer.from(p));
    const marked = Readable.from(pieces);
    markChunksDisposable(marked);
    expect(await store.writeUpload('freed', 0, marked)).toBe(8 * 64 * 1024);
    expect((await readFile(path.join(root, 'uploads/freed'))).equals(Buffer.concat(copies))).toBe(true);
    // Detached: the memory went back without a garbage collection.
    expect(pieces.every((p) => p.byteLength === 0)).toBe(true);

    const kept = Array.from({ length: 4 }, () => Buffer.from(randomBytes(64 * 1024)));
    await store.writeUpload('kept', 0, Readable.from(kept));
    expect(kept.every((p) => p.byteLength === 64 * 1024)).toBe(true);
  });

  it('never flushes when fsync is off', async () => {
    const recording = recordingSyncer(root, () => 'none');
    const store = await createFilesystemBlobStore(root, { fsync: false, syncer: recording.syncer });
    const data = randomBytes(3000);
    await store.writeUpload('m', 0, Readable.from([data]));
    await store.commitUpload('m', blobKey(digestOf(data)), data.length);
    await store.writeUpload('c', 0, Readable.from([data.subarray(0, 1000)]));
    await store.writeUpload('c', 1000, Readable.from([data.subarray(1000)]));
    await store.commitUpload('c', blobKey(digestOf(data.subarray(0, 2500))), 2500);
    expect(recording.calls).toEqual([]);
  });
});
