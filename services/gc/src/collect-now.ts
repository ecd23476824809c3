/**
 * A collection run now, on demand: the retention sweep, then every due review and deletion until none is left. The
 * operator's `garbage-collect` runs it on a collector of its own; a running embedded registry runs it on its own
 * collector when an admin asks (POST /admin/v1/gc/collect), so that a collection never runs beside a registry that
 * holds the same data.
 */
import type { GcQueueStats } from '@lading/metadata';
import type { GcCounters } from './gc-metrics';
import type { GcWorker } from './gc-worker';

/** What one collection did, and the queues it left. */
export interface GcCollection {
  /** Steps that found work. */
  steps: number;
  /** What the retention sweep did. */
  swept: Awaited<ReturnType<GcWorker['sweep']>>;
  deleted: GcCounters['deleted'];
  bytesFreed: number;
  postponed: GcCounters['postponed'];
  storageErrors: number;
  queues: GcQueueStats;
}

function grown<T extends Record<string, number>>(after: T, before: T): T {
  return Object.fromEntries(Object.entries(after).map(([k, n]) => [k, n - before[k]])) as T;
}

/**
 * Runs a collection now on `worker` and reports what it did. When the worker's own loops are running too, their work
 * during the run is counted with it (the queues are shared either way, through `FOR UPDATE SKIP LOCKED`).
 */
export async function collectNow(worker: GcWorker): Promise<GcCollection> {
  const c = worker.counters;
  const before = { deleted: { ...c.deleted }, postponed: { ...c.postponed }, bytesFreed: c.bytesFreed, storageErrors: c.storageErrors };
  const swept = await worker.sweep();
  const steps = await worker.runUntilIdle();
  return {
    steps,
    swept,
    deleted: grown(c.deleted, before.deleted),
    bytesFreed: c.bytesFreed - before.bytesFreed,
    postponed: grown(c.postponed, before.postponed),
    storageErrors: c.storageErrors - before.storageErrors,
    queues: await worker.queueStats(),
  };
}
