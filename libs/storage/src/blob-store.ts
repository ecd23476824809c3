/**
 * The storage seam: a small interface every blob driver implements (the filesystem and S3/MinIO), with
 * typed errors. Keys are opaque paths; content addressing and hashing live above this layer.
 */
import type { Readable } from 'node:stream';

/** An inclusive byte range, as in an HTTP Range header. */
export interface ByteRange {
  start: number;
  end: number;
}

/** What a driver knows about a stored object. */
export interface BlobStat {
  size: number;
}

/** A blob driver. Every implementation passes `describeBlobStoreDriver`. */
export interface BlobStore {
  /** The driver's name, for logs and metrics. */
  readonly driverName: string;
  /**
   * Writes an upload's bytes starting at `offset`, replacing whatever lies beyond it (a retried chunk), and resolves
   * with the number of bytes written. Offset 0 starts the upload's data afresh.
   * Throws InvalidOffsetError when `offset` is past the data already stored.
   */
  writeUpload(uploadId: string, offset: number, source: Readable): Promise<number>;
  /** Moves the first `size` bytes of an upload to `key`. Idempotent: if `key` already exists the upload is just dropped. */
  commitUpload(uploadId: string, key: string, size: number): Promise<void>;
  /** Removes an upload's data; succeeds if there is none. */
  deleteUpload(uploadId: string): Promise<void>;
  /** Stats an object; null when it does not exist. */
  stat(key: string): Promise<BlobStat | null>;
  /** Opens an object (or a range of it) for reading. Throws BlobNotFoundError when it does not exist. */
  read(key: string, range?: ByteRange): Promise<Readable>;
  /** Deletes an object; succeeds if it does not exist. */
  delete(key: string): Promise<void>;
  /** Checks that the backing store answers; throws when it does not. */
  ping(): Promise<void>;
}

/**
 * An object written straight to its key that stays out of sight until `commit` (`DirectWriteStore.writeObject`):
 * the bytes of a blob whose digest is still being checked.
 */
export interface PendingObject {
  /** The number of bytes written. */
  readonly size: number;
  /**
   * Makes the object visible at its key. Idempotent as `commitUpload`: an object already at the key is kept and what
   * was written is dropped.
   */
  commit(): Promise<void>;
  /** Drops what was written, leaving the key as it was; succeeds when there is nothing left to drop. */
  abort(): Promise<void>;
}

/**
 * A driver that can write a blob whose key is known before its bytes (a monolithic push names its digest) straight
 * to that key, with nothing copied or moved at commit. Optional: where it is missing, callers write an upload and
 * commit it (`writeUpload`, `commitUpload`).
 */
export interface DirectWriteStore extends BlobStore {
  /** Writes `source` as the object `key`, out of sight until the result's `commit`. */
  writeObject(key: string, source: Readable): Promise<PendingObject>;
}

/** True when a store can write objects straight to their key (`DirectWriteStore`). */
export function canWriteDirect(store: BlobStore): store is DirectWriteStore {
  return typeof (store as Partial<DirectWriteStore>).writeObject === 'function';
}

/**
 * The code given to errors that mean "the object store cannot serve right now"; they are also marked unavailable
 * (`markUnavailable`, answered as 503 and retried later).
 */
export const STORAGE_UNAVAILABLE = 'ESTORAGEUNAVAILABLE';

/** The object a key names does not exist. */
export class BlobNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`blob not found: ${key}`);
    this.name = 'BlobNotFoundError';
  }
}

/** A write started past the end of the data already stored for an upload. */
export class InvalidOffsetError extends Error {
  constructor(readonly uploadId: string, readonly offset: number, readonly stored: number) {
    super(`upload ${uploadId}: offset ${offset} is past the ${stored} bytes stored`);
    this.name = 'InvalidOffsetError';
  }
}

/** The storage key of a blob with the given digest (`sha256:abcd…` → `blobs/sha256/ab/abcd…`). */
export function blobKey(digest: string): string {
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const encoded = digest.slice(colon + 1);
  return `blobs/${algorithm}/${encoded.slice(0, 2)}/${encoded}`;
}
