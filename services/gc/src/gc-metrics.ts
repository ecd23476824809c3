/** The collector's counters (this process's, since it started) and their Prometheus text rendering with the queue figures. */
import type { GcQueueStats } from '@lading/metadata';

/** What a review decided. */
export type ReviewOutcome = 'deleted' | 'kept' | 'rescheduled' | 'gone' | 'postponed';

/** The collector's counters. */
export interface GcCounters {
  /** Reviews by queue and outcome. */
  reviews: Record<'blob' | 'manifest', Record<ReviewOutcome, number>>;
  /** Reviews put off: `busy` (a push held the rows), `timeout` (a statement or lock timed out), `pinned` (an upload pinned the object). */
  postponed: Record<'busy' | 'timeout' | 'pinned', number>;
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
    postponed: { busy: 0, timeout: 0, pinned: 0 },
    deleted: { manifests: 0, blobs: 0, objects: 0, uploads: 0, tags: 0 },
    bytesFreed: 0,
    unparseable: 0,
    storageErrors: 0,
    errors: 0,
    retentionReported: 0,
  };
}

function line(name: string, labels: Record<string, string>, value: number): string {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
  return `${name}${l ? `{${l}}` : ''} ${value}`;
}

/** Renders counters and queue figures in the Prometheus text exposition format. */
export function renderPrometheus(c: GcCounters, q: GcQueueStats): string {
  const out: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[Record<string, string>, number]>) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples.map(([labels, value]) => line(name, labels, value)));
  };
  metric('lading_gc_queue_size', 'gauge', 'Review tasks queued.', [
    [{ queue: 'blob' }, q.blobReviews.size],
    [{ queue: 'manifest' }, q.manifestReviews.size],
  ]);
  metric('lading_gc_queue_due', 'gauge', 'Review tasks due now.', [
    [{ queue: 'blob' }, q.blobReviews.due],
    [{ queue: 'manifest' }, q.manifestReviews.due],
  ]);
  metric('lading_gc_queue_overdue', 'gauge', 'Review tasks due for longer than the overdue threshold.', [
    [{ queue: 'blob' }, q.blobReviews.overdue],
    [{ queue: 'manifest' }, q.manifestReviews.overdue],
  ]);
  metric('lading_gc_tombstones', 'gauge', 'Stored objects whose metadata is deleted and whose deletion is pending.', [
    [{ kind: 'blob' }, q.tombstones.blob],
    [{ kind: 'upload' }, q.tombstones.upload],
    [{ kind: 'failing' }, q.tombstones.failing],
  ]);
  metric('lading_gc_pins', 'gauge', 'Uploads between committing an object and recording it.', [[{}, q.pins]]);
  const reviews: Array<[Record<string, string>, number]> = [];
  for (const queue of ['blob', 'manifest'] as const) {
    for (const [outcome, n] of Object.entries(c.reviews[queue])) reviews.push([{ queue, outcome }, n]);
  }
  metric('lading_gc_reviews_total', 'counter', 'Reviews by queue and outcome.', reviews);
  metric('lading_gc_postponed_total', 'counter', 'Reviews and deletions put off, by cause.', Object.entries(c.postponed).map(([cause, n]) => [{ cause }, n]));
  metric('lading_gc_deleted_total', 'counter', 'Things deleted, by kind.', Object.entries(c.deleted).map(([kind, n]) => [{ kind }, n]));
  metric('lading_gc_bytes_freed_total', 'counter', 'Bytes of blob objects deleted from storage.', [[{}, c.bytesFreed]]);
  metric('lading_gc_unparseable_total', 'counter', 'Manifests kept because their payload could not be parsed.', [[{}, c.unparseable]]);
  metric('lading_gc_storage_errors_total', 'counter', 'Failed object deletions (retried from their tombstone).', [[{}, c.storageErrors]]);
  metric('lading_gc_errors_total', 'counter', 'Failed collector steps (retried).', [[{}, c.errors]]);
  metric('lading_gc_retention_reported_total', 'counter', 'Tag deletions a dry-run retention policy reported.', [[{}, c.retentionReported]]);
  return `${out.join('\n')}\n`;
}
