/**
 * The write epoch the read workers check their caches against (read-workers.ts): a counter in shared memory that the
 * main thread bumps whenever something may change what a read answers, and that a worker reads without asking.
 *
 * A request that may change something (any method but GET and HEAD, through the public port or from a worker) bumps
 * it when it arrives and again just before its answer's head is written, and every event on the process's bus (the
 * garbage collector's deletes among them) bumps it when heard. A worker keeps an answer with the epoch read before it
 * asked the main thread, and serves it only while the epoch is unchanged: so an answer read before or during a write
 * is never served once that write has been answered, which is what read-your-writes across connections needs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type HttpApp, withFront } from '@lading/http';

/** The main thread's side of the epoch. */
export interface WriteEpoch {
  /** The shared memory the workers read (`readEpoch`). */
  buffer: SharedArrayBuffer;
  /** Makes every answer the workers hold stale. */
  bump(): void;
  /** `app` with every request that may change something bumping the epoch on arrival and before its answer. */
  watch(app: HttpApp): HttpApp;
}

const mutates = (method: string | undefined) => method !== 'GET' && method !== 'HEAD';

/** Creates the epoch (at 0). */
export function createWriteEpoch(): WriteEpoch {
  const buffer = new SharedArrayBuffer(4);
  const counter = new Int32Array(buffer);
  const bump = () => void Atomics.add(counter, 0, 1);
  return {
    buffer,
    bump,
    watch(app) {
      return withFront(app, (req: IncomingMessage, res: ServerResponse) => {
        if (!mutates(req.method)) return false;
        bump();
        // node writes every head through writeHead (res.end without one calls it too).
        const writeHead = res.writeHead;
        res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
          bump();
          return writeHead.apply(this, args);
        } as ServerResponse['writeHead'];
        return false;
      });
    },
  };
}

/** A worker's view of the epoch: its current value. */
export function readEpoch(buffer: SharedArrayBuffer): () => number {
  const counter = new Int32Array(buffer);
  return () => Atomics.load(counter, 0);
}
