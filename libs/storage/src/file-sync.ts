/**
 * Durability for the filesystem driver: flushing a file's data, or a directory's entries, to stable storage.
 *
 * A rename into place is atomic but not durable: after a power loss the new name may point at a file whose data never
 * reached the disk (a zero-length or short blob under a digest that promises other bytes), or the rename itself may
 * be gone. So a committed object's data is flushed before its rename, and the directory holding the new name (and any
 * directory created for it) after.
 *
 * A large upload is also flushed while it is still arriving (`flushWhileWriting`): the kernel may keep hundreds of
 * megabytes dirty until asked, and the flush before the answer would then write them all out while the client waits.
 */
import { open, type FileHandle } from 'node:fs/promises';

/** What the filesystem driver calls to make what it writes durable; a seam so specs can see each call. */
export interface FileSyncer {
  /**
   * Flushes a regular file's data and size to stable storage (fsync), through `handle` when the caller has the file
   * open (one open and close fewer).
   */
  syncFile(file: string, handle?: FileHandle): Promise<void>;
  /** Flushes a directory's entries (a file renamed or created in it) to stable storage (fsync on the directory). */
  syncDirectory(dir: string): Promise<void>;
  /**
   * Flushes the data written so far to a file still being written (fdatasync through its open handle), so that the
   * final `syncFile` has only the rest to write out. An optimisation: it promises nothing to a client.
   */
  syncWritten(file: string, handle: FileHandle): Promise<void>;
}

async function fsyncPath(target: string): Promise<void> {
  // Read-only is enough: fsync flushes the inode whatever the descriptor's access mode, and directories open no other way.
  const handle = await open(target, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Creates the FileSyncer that fsyncs through the operating system. */
export function createFileSyncer(): FileSyncer {
  return {
    syncFile: (file, handle) => (handle ? handle.sync() : fsyncPath(file)),
    syncDirectory: fsyncPath,
    syncWritten: (_file, handle) => handle.datasync(),
  };
}

/** Flushes started while a file is written, one at a time; see {@link flushWhileWriting}. */
export interface WritingFlusher {
  /** Tells the flusher how many bytes the file has received so far; may start a flush in the background. */
  written(bytes: number): void;
  /** Waits for the flush in flight, if any; rejects with the first flush that failed. */
  settle(): Promise<void>;
}

/**
 * Starts a `syncWritten` of `file` in the background each time `everyBytes` more have been written since the last
 * one started, never two at once, so that the disk writes the upload out while the rest of it is still arriving.
 * Nothing is awaited until `settle`: a failed flush is reported there (the final `syncFile` would fail too).
 */
export function flushWhileWriting(syncer: FileSyncer, file: string, handle: FileHandle, everyBytes: number): WritingFlusher {
  let flushedUpTo = 0;
  let inFlight: Promise<void> | undefined;
  let failure: unknown;
  return {
    written(bytes) {
      if (inFlight || failure !== undefined || bytes - flushedUpTo < everyBytes) return;
      flushedUpTo = bytes;
      inFlight = syncer.syncWritten(file, handle).then(
        () => {
          inFlight = undefined;
        },
        (err: unknown) => {
          failure ??= err;
          inFlight = undefined;
        },
      );
    },
    async settle() {
      await inFlight;
      if (failure !== undefined) throw failure;
    },
  };
}
