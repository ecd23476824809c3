/**
 * Reading a byte range of an open file: as an ordinary Readable (fresh buffers, safe for any consumer), or copied
 * straight into a sink through two reused buffers, the next read running while the previous chunk is written.
 * Writing a stream into an open file from a position on (`FileWriteSink`).
 */
import type { FileHandle } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { releaseChunk, type ByteSink, type CopyableBody, type CopyOutcome } from './blob-stream';

/** A bounded free list of equally sized buffers, shared by the copies of one store. */
export interface BufferPool {
  /** The size of every buffer the pool hands out. */
  readonly bufferBytes: number;
  /** A free buffer, or a new one when none is free. Its content is whatever it held last. */
  take(): Buffer;
  /** Returns a buffer nobody references any more; kept for reuse while fewer than the pool's bound are free. */
  give(buffer: Buffer): void;
}

/** Creates a pool of `bufferBytes` buffers that keeps at most `maxFree` of them between uses. */
export function createBufferPool(bufferBytes: number, maxFree: number): BufferPool {
  const free: Buffer[] = [];
  return {
    bufferBytes,
    take: () => free.pop() ?? Buffer.allocUnsafeSlow(bufferBytes),
    give(buffer) {
      if (buffer.length === bufferBytes && free.length < maxFree) free.push(buffer);
    },
  };
}

/** Where a file range stream reads, and with what. */
export interface FileRangeOptions {
  /** The first byte. */
  start: number;
  /** One past the last byte. */
  end: number;
  /** Where copies take their buffers from; its buffer size is also the Readable's chunk size. */
  pool: BufferPool;
}

/** The bytes of a file that ended before the range did. */
export class FileEndedEarlyError extends Error {
  constructor(readonly position: number, readonly end: number) {
    super(`file ended at byte ${position}, before the end of the range read (${end})`);
    this.name = 'FileEndedEarlyError';
  }
}

/**
 * A range of an open file, which it owns: the handle is closed when the stream is destroyed, ends, or a copy finishes
 * (however it finishes). Read it as a Readable, or call `copyTo` once instead.
 */
export class FileRangeStream extends Readable implements CopyableBody {
  readonly #handle: FileHandle;
  readonly #pool: BufferPool;
  readonly #end: number;
  #position: number;
  #copying = false;
  #closing: Promise<void> | undefined;

  constructor(handle: FileHandle, options: FileRangeOptions) {
    super({ highWaterMark: options.pool.bufferBytes });
    this.#handle = handle;
    this.#pool = options.pool;
    this.#position = options.start;
    this.#end = options.end;
  }

  /** Fills `buffer[0, length)` from the file at `position`; a file that ends first is an error. */
  async #fill(buffer: Buffer, length: number, position: number): Promise<number> {
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.#handle.read(buffer, filled, length - filled, position + filled);
      if (bytesRead === 0) throw new FileEndedEarlyError(position + filled, this.#end);
      filled += bytesRead;
    }
    return length;
  }

  #closeHandle(): Promise<void> {
    this.#closing ??= this.#handle.close();
    return this.#closing;
  }

  override _read(): void {
    if (this.#copying) {
      this.destroy(new Error('a file range stream being copied cannot also be read'));
      return;
    }
    const length = Math.min(this.#pool.bufferBytes, this.#end - this.#position);
    if (length <= 0) {
      this.push(null);
      return;
    }
    // A consumer of a Readable may keep the chunks it is given: each is a buffer of its own.
    const chunk = Buffer.allocUnsafe(length);
    this.#handle.read(chunk, 0, length, this.#position).then(
      ({ bytesRead }) => {
        if (this.destroyed) return;
        if (bytesRead === 0) {
          // Like fs.createReadStream: a file shorter than the range ends the stream.
          this.push(null);
          return;
        }
        this.#position += bytesRead;
        this.push(bytesRead === length ? chunk : chunk.subarray(0, bytesRead));
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#closeHandle().then(() => callback(error), (closeError: Error) => callback(error ?? closeError));
  }

  async copyTo(sink: ByteSink): Promise<CopyOutcome> {
    if (this.#copying || this.readableDidRead) throw new Error('copyTo is called once, on a stream nobody has read');
    this.#copying = true;
    let closed = false;
    let wake: (() => void) | undefined;
    const onClose = () => {
      closed = true;
      wake?.();
    };
    sink.once('close', onClose);
    const chunkBytes = this.#pool.bufferBytes;
    const pool = this.#pool;
    let position = this.#position;
    const end = this.#end;
    const buffers: Buffer[] = [];
    // A buffer the sink may still hold (its write's callback has not run) never goes back to the pool.
    const heldBySink = new Set<Buffer>();
    let pending: Promise<number> | undefined;
    try {
      if (end - position <= chunkBytes) {
        // One chunk: read into a buffer of its own and hand it over with the end.
        const chunk = Buffer.allocUnsafe(end - position);
        await this.#fill(chunk, chunk.length, position);
        if (closed || sink.destroyed) return 'aborted';
        sink.end(chunk);
        return 'complete';
      }
      buffers.push(pool.take(), pool.take());
      const startFill = (buffer: Buffer, from: number): Promise<number> => {
        const filling = this.#fill(buffer, Math.min(chunkBytes, end - from), from);
        // Awaited later: a read that fails while a write is awaited must not count as unhandled meanwhile.
        filling.catch(() => undefined);
        return filling;
      };
      let current = 0;
      pending = startFill(buffers[current], position);
      for (;;) {
        const length = await pending;
        pending = undefined;
        const buffer = buffers[current];
        position += length;
        if (position < end) {
          // Double buffering: the other buffer's last write has completed, so it can be refilled during this write.
          current ^= 1;
          pending = startFill(buffers[current], position);
        }
        if (closed || sink.destroyed) return 'aborted';
        heldBySink.add(buffer);
        const failed = await new Promise<boolean>((resolve) => {
          wake = () => resolve(true);
          sink.write(length === buffer.length ? buffer : buffer.subarray(0, length), (err) => resolve(Boolean(err)));
        });
        wake = undefined;
        if (failed || closed) return 'aborted';
        heldBySink.delete(buffer);
        if (!pending) {
          sink.end();
          return 'complete';
        }
      }
    } finally {
      sink.removeListener('close', onClose);
      // A read still running writes into its buffer: wait for it before the buffer can go back to the pool.
      if (pending) await pending.catch(() => undefined);
      for (const buffer of buffers) if (!heldBySink.has(buffer)) pool.give(buffer);
      this.#position = position;
      await this.#closeHandle().catch(() => undefined);
      this.destroy();
    }
  }
}

/**
 * A stream written into an open file from `start` on, which it does not own (the caller closes the handle). What
 * queues up while a write runs goes in one `pwritev`, as with `fs.createWriteStream`; after each write `onWritten` is
 * told the bytes written so far (the driver flushes large uploads while they arrive).
 */
export class FileWriteSink extends Writable {
  readonly #handle: FileHandle;
  readonly #onWritten: ((bytes: number) => void) | undefined;
  readonly #releaseWritten: boolean;
  #position: number;
  /** The bytes written into the file so far. */
  bytesWritten = 0;

  /**
   * With `releaseWritten` (the source's chunks are disposable, see `markChunksDisposable`), each chunk's memory is
   * released once it is written.
   */
  constructor(handle: FileHandle, start: number, options: { highWaterMark: number; onWritten?: (bytes: number) => void; releaseWritten?: boolean }) {
    super({ highWaterMark: options.highWaterMark });
    this.#handle = handle;
    this.#position = start;
    this.#onWritten = options.onWritten;
    this.#releaseWritten = options.releaseWritten === true;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#writeAll([chunk]).then(() => callback(), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.#writeAll(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  /** Writes every byte of `buffers` in order, going on after a short write. */
  async #writeAll(buffers: Buffer[]): Promise<void> {
    let pending = buffers;
    while (pending.length > 0) {
      const { bytesWritten } = pending.length === 1
        ? await this.#handle.write(pending[0], 0, pending[0].length, this.#position)
        : await this.#handle.writev(pending, this.#position);
      if (bytesWritten === 0) throw new Error('a write into the file made no progress');
      this.#position += bytesWritten;
      this.bytesWritten += bytesWritten;
      let skip = bytesWritten;
      const rest: Buffer[] = [];
      for (const buffer of pending) {
        if (skip >= buffer.length) skip -= buffer.length;
        else {
          rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
          skip = 0;
        }
      }
      pending = rest;
    }
    if (this.#releaseWritten) for (const buffer of buffers) releaseChunk(buffer);
    this.#onWritten?.(this.bytesWritten);
  }
}
