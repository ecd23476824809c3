/**
 * An optional capability of the Readable a driver's `read` returns: copying itself straight into an HTTP response
 * (or any writable) through buffers it reuses, instead of handing a fresh buffer per chunk to `pipe`. Large blob
 * GETs then allocate nothing per chunk, so a busy process is not pushed into a major garbage collection every few
 * dozen megabytes served.
 */
import type { Readable } from 'node:stream';

/** Where a body copies its bytes to: the part of `http.ServerResponse` (or any `Writable`) the copy uses. */
export interface ByteSink {
  /** Queues bytes; `callback` runs once they have left for the kernel (or with the error that stopped them). */
  write(chunk: Uint8Array, callback: (error?: Error | null) => void): boolean;
  /** Ends the body, with a last chunk when given. */
  end(chunk?: Uint8Array): unknown;
  once(event: 'close', listener: () => void): unknown;
  removeListener(event: 'close', listener: () => void): unknown;
  /** True once the sink was destroyed (a client that went away). */
  readonly destroyed: boolean;
}

/** How a copy ended: every byte written and the sink ended, or the sink closed before that (the client left). */
export type CopyOutcome = 'complete' | 'aborted';

/** A body that can copy itself into a sink. */
export interface CopyableBody {
  /**
   * Writes the body's bytes into `sink` and ends it. A buffer is refilled only after the sink's callback for its
   * previous write, so nothing handed to the sink is overwritten while queued. Call it instead of reading the stream,
   * never after. Resolves 'aborted' when the sink closes early; rejects on a read error (the sink is left as it is,
   * for the caller to destroy). The body's resources are released either way.
   */
  copyTo(sink: ByteSink): Promise<CopyOutcome>;
}

/** Whether a body returned by `BlobStore.read` can copy itself into a sink. */
export function canCopyTo(body: Readable): body is Readable & CopyableBody {
  return typeof (body as Partial<CopyableBody>).copyTo === 'function';
}

/** Registered (`Symbol.for`), so that two copies of this module in one process agree on it. */
const DISPOSABLE_CHUNKS = Symbol.for('lading.disposableChunks');

/**
 * Marks `stream` as emitting chunks that are nobody else's (an HTTP request body's pieces, each in a buffer of its
 * own, passed on once hashed): whoever consumes them may release their memory once done with them (`releaseChunk`).
 * Each piece node:http hands over is memory outside V8's heap, freed only by a garbage collection; a 256 MB push
 * allocates 256 MB of them and starts a major GC of the whole heap every 64 MB. Released as soon as written, they
 * start none (docs/benchmarks.md, "The filesystem's blob bytes").
 */
export function markChunksDisposable(stream: Readable): void {
  (stream as Readable & { [DISPOSABLE_CHUNKS]?: true })[DISPOSABLE_CHUNKS] = true;
}

/** Whether `stream` was marked by `markChunksDisposable`. */
export function chunksAreDisposable(stream: Readable): boolean {
  return (stream as Readable & { [DISPOSABLE_CHUNKS]?: true })[DISPOSABLE_CHUNKS] === true;
}

/**
 * Frees a disposable chunk's memory now, when the chunk is the whole of its ArrayBuffer (a view into a larger or
 * shared one is left alone): the buffer is detached, and any reference left to it sees zero bytes.
 */
export function releaseChunk(chunk: Uint8Array): void {
  const memory = chunk.buffer;
  if (!(memory instanceof ArrayBuffer) || chunk.byteOffset !== 0 || memory.byteLength !== chunk.byteLength || chunk.byteLength === 0) return;
  // ES2024's ArrayBuffer.prototype.transfer (Node 21+); the compiler's lib predates it.
  (memory as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
}
