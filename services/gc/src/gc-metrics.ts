/**
 * The collector's counters (this process's, since it started): the one record of what it did, read by `/gc/status`,
 * `collectNow` and, at each collection, the registry metrics of @lading/telemetry (`observeGcCounters`).
 */
import type { GcQueueStats } from '@lading/metadata';
import type { GcCounterFigures, GcQueueFigures } from '@lading/telemetry';

/** What a review decided. */
export type ReviewOutcome = 'deleted' | 'kept' | 'rescheduled' | 'gone' | 'postponed';

/** The collector's counters. */
export interface GcCounters {
  /** Reviews by queue and outcome. */
  reviews: Record<'blob' | 'manifest', Record<ReviewOutcome, number>>;
  /** Reviews put off: `busy` (a push held the rows), `timeout` (a statement or lock timed out), `pinned` (an upload pinned the object), `held` (a backup held object deletions). */
  postponed: Record<'busy' | 'timeout' | 'pinned' | 'held', number>;
  deleted: { manifests: number; blobs: number; objects: number; uploads: number; tags: number };
  bytesFreed: number;
  /** Manifests kept because their payload could not be parsed. */
  unparseable: number;
  storageErrors: number;
  /** Unexpected failures of a collector step (the database down, a bug); the step is retried. */
  errors: number;
  /** Retention deletions a dry-run policy only reported. */
  retentionReported: number;
}

/** Fresh counters at zero. */
export function createCounters(): GcCounters {
  const outcomes = (): Record<ReviewOutcome, number> => ({ deleted: 0, kept: 0, rescheduled: 0, gone: 0, postponed: 0 });
  return {
    reviews: { blob: outcomes(), manifest: outcomes() },
    postponed: { busy: 0, timeout: 0, pinned: 0, held: 0 },
    deleted: { manifests: 0, blobs: 0, objects: 0, uploads: 0, tags: 0 },
    bytesFreed: 0,
    unparseable: 0,
    storageErrors: 0,
    errors: 0,
    retentionReported: 0,
  };
}

/** The label value of each `deleted` counter in `lading_gc_deleted_total{kind}`. */
const DELETED_KIND: Record<keyof GcCounters['deleted'], string> = { manifests: 'manifest', blobs: 'blob', objects: 'object', uploads: 'upload', tags: 'tag' };

/** The counters as the registry metrics read them at collection (`observeGcCounters`): label values for keys. */
export function gcCounterFigures(c: GcCounters): GcCounterFigures {
  const deleted: Record<string, number> = {};
  for (const [key, n] of Object.entries(c.deleted)) deleted[DELETED_KIND[key as keyof GcCounters['deleted']]] = n;
  const { reviews, postponed, bytesFreed, unparseable, storageErrors, errors, retentionReported } = c;
  return { reviews, postponed, deleted, bytesFreed, unparseable, storageErrors, errors, retentionReported };
}

/** The queues' figures as the registry metrics read them at collection (`observeGcQueues`). */
export function gcQueueFigures(q: GcQueueStats): GcQueueFigures {
  return { queues: { blob: q.blobReviews, manifest: q.manifestReviews }, tombstones: q.tombstones, pins: q.pins };
}
