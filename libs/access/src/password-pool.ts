/**
 * A bounded pool of worker threads that hash and verify passwords, so that argon2id (tens of milliseconds of CPU
 * and ~19 MB per call) never runs on a server's event loop. Jobs beyond the busy workers wait in a queue of bounded
 * length; when it is full a job is refused at once with {@link PasswordPoolBusyError} rather than queued without
 * bound, so a burst of logins costs its senders a retry instead of costing every other request its latency.
 * Workers start on the first job (a registry without auth never starts one) and stay until the pool is closed.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ARGON2_PARAMS, PasswordHasher } from './passwords';

/** The worker's source: plain CommonJS next to this file, so tsx, jest and the bundle all load it (see the file). */
export const PASSWORD_WORKER_FILE = path.join(__dirname, 'password-worker.cjs');

/** Thrown when every worker is busy and the queue is full; callers answer 429 or 503 with Retry-After. */
export class PasswordPoolBusyError extends Error {
  constructor() {
    super('every password-hashing worker is busy');
    this.name = 'PasswordPoolBusyError';
  }
}

/** How the pool is sized. */
export interface PasswordPoolOptions {
  /** Worker threads (each runs one job at a time). */
  size: number;
  /** Jobs that may wait for a worker; more are refused with PasswordPoolBusyError. */
  queueLimit: number;
}

/** A running pool: a PasswordHasher that must be closed with the process. */
export interface PasswordPool extends PasswordHasher {
  /** Jobs running plus jobs waiting. */
  pending(): number;
  /** Stops the workers; jobs not yet done are rejected. */
  close(): Promise<void>;
}

type Job = { op: 'hash'; password: string; salt: string } | { op: 'verify'; password: string; encoded: string };
interface Task {
  job: Job;
  resolve(value: unknown): void;
  reject(error: Error): void;
}
interface Slot {
  worker: Worker;
  task: Task | null;
}

/** Starts a pool of `size` workers with a queue of `queueLimit` waiting jobs. */
export function createPasswordPool(options: PasswordPoolOptions): PasswordPool {
  const size = Math.max(1, Math.floor(options.size));
  const queueLimit = Math.max(0, Math.floor(options.queueLimit));
  const queue: Task[] = [];
  const slots: Slot[] = [];
  let closed = false;
  let nextId = 0;

  function spawn(): Slot {
    const slot: Slot = { worker: new Worker(PASSWORD_WORKER_FILE, { workerData: { params: ARGON2_PARAMS } }), task: null };
    slot.worker.unref();
    slot.worker.on('message', (message: { result?: unknown; error?: string }) => {
      const task = slot.task;
      slot.task = null;
      if (task) {
        if (message.error !== undefined) task.reject(new Error(message.error));
        else task.resolve(message.result);
      }
      dispatch();
    });
    // A worker that dies (out of memory, a bug) fails its job and is replaced; the pool keeps its size.
    const replace = (error: Error) => {
      const index = slots.indexOf(slot);
      if (index < 0) return;
      slots.splice(index, 1);
      slot.task?.reject(error);
      slot.task = null;
      if (!closed) dispatch();
    };
    slot.worker.on('error', replace);
    slot.worker.on('exit', (code) => replace(new Error(`password worker exited with code ${code}`)));
    return slot;
  }

  function dispatch(): void {
    while (!closed && queue.length > slots.filter((s) => !s.task).length && slots.length < size) slots.push(spawn());
    for (const slot of slots) {
      if (slot.task || queue.length === 0) continue;
      const task = queue.shift()!;
      slot.task = task;
      slot.worker.postMessage({ ...task.job, id: nextId++ });
    }
  }

  function submit<T>(job: Job): Promise<T> {
    if (closed) return Promise.reject(new Error('the password pool is closed'));
    const idle = slots.length < size || slots.some((s) => !s.task);
    if (!idle && queue.length >= queueLimit) return Promise.reject(new PasswordPoolBusyError());
    return new Promise<T>((resolve, reject) => {
      queue.push({ job, resolve: resolve as (value: unknown) => void, reject });
      dispatch();
    });
  }

  return {
    hash: (password) => submit<string>({ op: 'hash', password, salt: randomBytes(16).toString('base64') }),
    verify: (password, encoded) => submit<boolean>({ op: 'verify', password, encoded }),
    pending: () => queue.length + slots.filter((s) => s.task).length,
    async close() {
      if (closed) return;
      closed = true;
      for (const task of queue.splice(0)) task.reject(new Error('the password pool is closed'));
      const workers = slots.splice(0);
      for (const slot of workers) slot.task?.reject(new Error('the password pool is closed'));
      await Promise.all(workers.map((slot) => slot.worker.terminate()));
    },
  };
}
