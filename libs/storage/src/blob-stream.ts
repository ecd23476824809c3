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
