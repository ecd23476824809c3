/** The filesystem blob driver: the embedded mode's storage, one file per blob under a root directory. */
import { mkdir, open, rename, rm, stat, truncate, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { markUnavailable } from '@lading/oci';
import { BlobNotFoundError, BlobStat, BlobStore, ByteRange, InvalidOffsetError, STORAGE_UNAVAILABLE } from './blob-store';
import { chunksAreDisposable } from './blob-stream';
import { createBufferPool, FileRangeStream, FileWriteSink } from './file-stream';
import { createFileSyncer, flushWhileWriting, type FileSyncer } from './file-sync';

const IO_CHUNK = 1024 * 1024;
/** Read buffers kept between blob GETs: enough for a few concurrent large downloads, a few MiB at most. */
const POOLED_READ_BUFFERS = 8;
/**
 * How many bytes of an upload are written between two flushes while it arrives (fsync on): the flush before the
 * answer then writes out at most about this much (docs/benchmarks.md, "The filesystem's blob bytes").
 */
export const DEFAULT_FLUSH_EVERY_BYTES = 16 * 1024 * 1024;

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/** Errors meaning the filesystem has no room left for the write (the disk, or the user's quota, is full). */
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/**
 * Marks a full filesystem as the store being unavailable, as the S3 driver marks MinIO's `XMinioStorageFull`: code
 * STORAGE_UNAVAILABLE (the errno name kept in `fsCode`), answered 503 and retried later; it frees up when blobs go.
 */
function classify(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && FULL_CODES.has(code)) markUnavailable(Object.assign(err as object, { code: STORAGE_UNAVAILABLE, fsCode: code }));
  return err;
}

/** Deletes a file if it exists (one unlink; `rm` would stat it first). */
async function removeFile(file: string): Promise<void> {
  await unlink(file).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
}

/** How a filesystem store treats durability. */
export interface FilesystemBlobStoreOptions {
  /**
   * Flush what the store acknowledges to stable storage (default true): an upload's bytes before `writeUpload`
   * resolves, a committed object's data before its rename and its directory after. Off, a power loss can lose or
   * truncate objects the registry already acknowledged: for throwaway data only (CI, benchmarks of other things).
   */
  fsync?: boolean;
  /** Where the flushes go; the operating system's fsync unless a spec watches them. */
  syncer?: FileSyncer;
  /**
   * Fsync on, an upload is also flushed in the background each time this many more bytes of it were written
   * (default {@link DEFAULT_FLUSH_EVERY_BYTES}; 0 never), so that the flush before the answer has little left to do.
   */
  flushEveryBytes?: number;
}

/**
 * The directories whose entries a commit into `target` changed: the target's own and, when `firstCreated` (the first
 * directory `mkdir -p` made) is set, each created directory's parent. When the directory was missing but another
 * commit created it first (`firstCreated` undefined), its parent too: that commit may not have flushed it yet.
 */
function changedDirectories(target: string, madeDirectory: boolean, firstCreated: string | undefined): string[] {
  const dir = path.dirname(target);
  if (!madeDirectory) return [dir];
  const last = path.dirname(firstCreated ?? dir);
  const dirs = [dir];
  for (let d = dir; d !== last && path.dirname(d) !== d; ) {
    d = path.dirname(d);
    dirs.push(d);
  }
  return dirs;
}

/**
 * Creates a filesystem BlobStore rooted at `root` (created if missing).
 *
 * Invariant (fsync on): an upload's bytes are on disk when `writeUpload` resolves, so `commitUpload` flushes the file
 * again only when it changed it (cut it to size, or created it empty); then it renames, then flushes the directories
 * the rename and any `mkdir` changed. Nothing is acknowledged that a power loss could take back. A write that fails
 * leaves the upload as it was before it (cut back to `offset`); a full disk fails it as STORAGE_UNAVAILABLE (503).
 */
export async function createFilesystemBlobStore(root: string, options: FilesystemBlobStoreOptions = {}): Promise<BlobStore> {
  const syncer = options.fsync === false ? undefined : (options.syncer ?? createFileSyncer());
  const flushEveryBytes = options.flushEveryBytes ?? DEFAULT_FLUSH_EVERY_BYTES;
  const absoluteRoot = path.resolve(root);
  await mkdir(path.join(absoluteRoot, 'uploads'), { recursive: true });
  const pathOf = (key: string): string => {
    const resolved = path.resolve(absoluteRoot, key);
    if (!resolved.startsWith(absoluteRoot + path.sep)) throw new Error(`key escapes the storage root: ${key}`);
    return resolved;
  };
  const uploadPath = (uploadId: string): string => pathOf(`uploads/${uploadId}`);
  // Large blob GETs copy through these instead of a fresh megabyte per chunk (see FileRangeStream.copyTo).
  const readBuffers = createBufferPool(IO_CHUNK, POOLED_READ_BUFFERS);

  /**
   * Writes `source` into the upload file from `offset` on, flushing it (fsync on) before resolving with the bytes
   * written; large uploads are also flushed while they arrive. A write that fails is cut back to `offset` (the file
   * removed when that is 0), so that nothing of it stays stored: a full disk gets its space back.
   */
  async function writeFrom(uploadId: string, offset: number, source: Readable): Promise<number> {
    const file = uploadPath(uploadId);
    if (offset > 0) {
      const stored = await stat(file).then((s) => s.size, (err) => (isNotFound(err) ? 0 : Promise.reject(err)));
      if (offset > stored) throw new InvalidOffsetError(uploadId, offset, stored);
      await truncate(file, offset);
    }
    const handle = await open(file, offset === 0 ? 'w' : 'r+');
    const flusher = syncer && flushEveryBytes > 0 ? flushWhileWriting(syncer, file, handle, flushEveryBytes) : undefined;
    try {
      const sink = new FileWriteSink(handle, offset, {
        highWaterMark: IO_CHUNK,
        onWritten: flusher && ((bytes) => flusher.written(bytes)),
        releaseWritten: chunksAreDisposable(source),
      });
      try {
        await pipeline(source, sink);
      } finally {
        await flusher?.settle();
      }
      await syncer?.syncFile(file, handle);
      return sink.bytesWritten;
    } catch (err) {
      await flusher?.settle().catch(() => undefined);
      // What this write added goes: the file as it was before the write (or none, at offset 0).
      await (offset === 0 ? removeFile(file) : handle.truncate(offset)).catch(() => undefined);
      throw err;
    } finally {
      await handle.close();
    }
  }

  /** Moves the upload file `source` into place as `target`, cut to `size` bytes; see commitUpload. */
  async function commit(source: string, target: string, size: number): Promise<void> {
    if (await stat(target).then(() => true, () => false)) {
      await removeFile(source);
      return;
    }
    // The object is exactly `size` bytes: bytes past it (a chunk that failed after writing some) are cut, and a
    // session that received no bytes has no file yet. A file already of that size (nearly always) is left alone.
    const stored = await stat(source).then(
      (s) => s.size,
      (err) => (isNotFound(err) && size === 0 ? null : Promise.reject(err)),
    );
    if (stored === null) await (await open(source, 'w')).close();
    else if (stored !== size) await truncate(source, size);
    if (stored !== size) await syncer?.syncFile(source);
    let madeDirectory = false;
    let firstCreated: string | undefined;
    try {
      await rename(source, target);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // The object's directory (one per digest prefix) does not exist yet.
      madeDirectory = true;
      firstCreated = await mkdir(path.dirname(target), { recursive: true });
      await rename(source, target);
    }
    if (syncer) for (const dir of changedDirectories(target, madeDirectory, firstCreated)) await syncer.syncDirectory(dir);
  }

  return {
    driverName: 'filesystem',

    async writeUpload(uploadId: string, offset: number, source: Readable): Promise<number> {
      try {
        return await writeFrom(uploadId, offset, source);
      } catch (err) {
        throw classify(err);
      }
    },

    async commitUpload(uploadId: string, key: string, size: number): Promise<void> {
      await commit(uploadPath(uploadId), pathOf(key), size).catch((err: unknown) => Promise.reject(classify(err)));
    },

    async deleteUpload(uploadId: string): Promise<void> {
      await removeFile(uploadPath(uploadId));
    },

    async stat(key: string): Promise<BlobStat | null> {
      try {
        return { size: (await stat(pathOf(key))).size };
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    },

    async read(key: string, range?: ByteRange): Promise<Readable> {
      let handle;
      try {
        handle = await open(pathOf(key), 'r');
      } catch (err) {
        if (isNotFound(err)) throw new BlobNotFoundError(key);
        throw err;
      }
      try {
        const end = range ? range.end + 1 : (await handle.stat()).size;
        return new FileRangeStream(handle, { start: range?.start ?? 0, end, pool: readBuffers });
      } catch (err) {
        await handle.close();
        throw err;
      }
    },

    async delete(key: string): Promise<void> {
      await rm(pathOf(key), { force: true });
    },

    async ping(): Promise<void> {
      await stat(absoluteRoot);
    },
  };
}
