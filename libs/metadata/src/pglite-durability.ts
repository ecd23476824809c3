/**
 * Durability for the embedded PGlite database: what it takes for a committed transaction to survive a power loss.
 *
 * PGlite starts Postgres with `-F` (fsync off), and even with fsync on, none of Postgres' flushes reach the disk
 * through emscripten's NODEFS (measured with `strace -f -e trace=fsync,fdatasync` on commits, PGlite 0.5.16):
 * - `fsync()` becomes emscripten's `fd_sync`, which calls the stream's `fsync` operation, and NODEFS has none;
 * - `fdatasync()` (Postgres' default `wal_sync_method` on Linux) is a stub that returns 0 without doing anything.
 * So a durable database needs three things, all set up here: fsync on (no `-F`), `wal_sync_method=fsync` (the one
 * call that reaches the filesystem's operations), and an `fsync` operation on NODEFS that really flushes. Then each
 * COMMIT flushes the WAL once, checkpoints flush the data files and directories, as Postgres does on a real disk.
 */
import { closeSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';

/** Flushes an open file descriptor (a file or a directory) to stable storage; throws on failure, as fsync(2) does. */
export type FsyncFd = (fd: number) => void;

/** How the embedded database treats durability. */
export interface PgliteDurabilityOptions {
  /**
   * Flush each committed transaction (its WAL) and each checkpoint to disk (default true). Off, Postgres runs with
   * fsync off, PGlite's default: a power loss can lose acknowledged transactions or corrupt the database.
   */
  fsync?: boolean;
  /** The flush itself: the operating system's fsync unless a spec counts the calls. */
  fsyncFd?: FsyncFd;
}

/** The start-up parameters that make Postgres flush (fsync on) or not (PGlite's `-F`), on top of PGlite's defaults. */
export function durabilityStartParams(defaults: readonly string[], fsync: boolean): string[] {
  if (!fsync) return defaults.includes('-F') ? [...defaults] : [...defaults, '-F'];
  // fdatasync is a no-op under emscripten: fsync is the call that reaches NODEFS' (patched) fsync operation.
  return [...defaults.filter((param) => param !== '-F'), '-c', 'fsync=on', '-c', 'wal_sync_method=fsync'];
}

/** The parts of emscripten's NODEFS this module touches. */
interface NodefsInternals {
  stream_ops: { fsync?: (stream: { nfd?: number }) => number };
  tryFSOperation<T>(operation: () => T): T;
}

/** NODEFS whose streams have an `fsync` operation that reaches the disk (NODEFS itself has none). */
class DurableNodeFS extends NodeFS {
  constructor(dataDir: string, private readonly fsyncFd: FsyncFd) {
    super(dataDir);
  }

  override async init(pg: PGlite, opts: Parameters<NodeFS['init']>[1]): ReturnType<NodeFS['init']> {
    const result = await super.init(pg, opts);
    const fsyncFd = this.fsyncFd;
    const preRun = result.emscriptenOpts.preRun ?? [];
    preRun.push((mod) => {
      const nodefs = mod.NODEFS as unknown as NodefsInternals;
      // Every NODEFS node shares this one operations object. tryFSOperation turns a failed fsync (EIO) into the
      // errno Postgres sees, which then PANICs rather than carry on with data it cannot vouch for.
      nodefs.stream_ops.fsync = (stream) =>
        nodefs.tryFSOperation(() => {
          if (stream.nfd !== undefined) fsyncFd(stream.nfd);
          return 0;
        });
    });
    result.emscriptenOpts.preRun = preRun;
    return result;
  }
}

/** Creates the filesystem PGlite runs on in `dataDir`: NODEFS, with fsyncs reaching the disk when `fsync` is on. */
export function createPgliteFilesystem(dataDir: string, options: PgliteDurabilityOptions = {}): NodeFS {
  return options.fsync === false ? new NodeFS(dataDir) : new DurableNodeFS(dataDir, options.fsyncFd ?? fsyncSync);
}

/**
 * Flushes every file and directory under `dir` (children before their directory), then the directory holding `dir`,
 * as `initdb --sync-only` does: a database created in a child process (whose flushes went nowhere) is on disk before
 * the registry writes to it.
 */
export function syncCreatedTree(dir: string, fsyncFd: FsyncFd = fsyncSync): void {
  syncTree(dir, fsyncFd);
  syncPath(path.dirname(path.resolve(dir)), fsyncFd);
}

function syncTree(dir: string, fsyncFd: FsyncFd): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const child = path.join(dir, entry.name);
    if (entry.isDirectory()) syncTree(child, fsyncFd);
    else if (entry.isFile()) syncPath(child, fsyncFd);
  }
  syncPath(dir, fsyncFd);
}

function syncPath(target: string, fsyncFd: FsyncFd): void {
  const fd = openSync(target, 'r');
  try {
    fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}
