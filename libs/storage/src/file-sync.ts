/**
 * Durability for the filesystem driver: flushing a file's data, or a directory's entries, to stable storage.
 *
 * A rename into place is atomic but not durable: after a power loss the new name may point at a file whose data never
 * reached the disk (a zero-length or short blob under a digest that promises other bytes), or the rename itself may
 * be gone. So a committed object's data is flushed before its rename, and the directory holding the new name (and any
 * directory created for it) after.
 */
import { open } from 'node:fs/promises';

/** What the filesystem driver calls to make what it writes durable; a seam so specs can see each call. */
export interface FileSyncer {
  /** Flushes a regular file's data and size to stable storage (fsync). */
  syncFile(file: string): Promise<void>;
  /** Flushes a directory's entries (a file renamed or created in it) to stable storage (fsync on the directory). */
  syncDirectory(dir: string): Promise<void>;
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
  return { syncFile: fsyncPath, syncDirectory: fsyncPath };
}
