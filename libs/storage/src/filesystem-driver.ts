/** The filesystem blob driver: the embedded mode's storage, one file per blob under a root directory. */
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobNotFoundError, BlobStat, BlobStore, ByteRange, InvalidOffsetError } from './blob-store';
import { createBufferPool, FileRangeStream } from './file-stream';
import { createFileSyncer, type FileSyncer } from './file-sync';

const IO_CHUNK = 1024 * 1024;
/** Read buffers kept between blob GETs: enough for a few concurrent large downloads, a few MiB at most. */
const POOLED_READ_BUFFERS = 8;

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
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
 * the rename and any `mkdir` changed. Nothing is acknowledged that a power loss could take back.
 */
export async function createFilesystemBlobStore(root: string, options: FilesystemBlobStoreOptions = {}): Promise<BlobStore> {
  const syncer = options.fsync === false ? undefined : (options.syncer ?? createFileSyncer());
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

  return {
    driverName: 'filesystem',

    async writeUpload(uploadId: string, offset: number, source: Readable): Promise<number> {
      const file = uploadPath(uploadId);
      if (offset > 0) {
        const stored = await stat(file).then((s) => s.size, (err) => (isNotFound(err) ? 0 : Promise.reject(err)));
        if (offset > stored) throw new InvalidOffsetError(uploadId, offset, stored);
        await truncate(file, offset);
      }
      const sink = createWriteStream(file, { flags: offset === 0 ? 'w' : 'r+', start: offset, highWaterMark: IO_CHUNK });
      await pipeline(source, sink);
      await syncer?.syncFile(file);
      return sink.bytesWritten;
    },

    async commitUpload(uploadId: string, key: string, size: number): Promise<void> {
      const source = uploadPath(uploadId);
      const target = pathOf(key);
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
