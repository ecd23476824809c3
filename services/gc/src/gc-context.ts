/** What every collector step is built from, the hooks tests pause it at, and how its lock conflicts are told apart. */
import type { EventContext, OutboxContext } from '@lading/events';
import { Database, PG_ERRORS, SqlExecutor, sqlState } from '@lading/metadata';
import type { BlobStore } from '@lading/storage';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { SPAN_NAMES, withSpan } from '@lading/telemetry';
import type { Logger } from '@lading/telemetry';
import type { ObjectDeletionHold } from './deletion-hold';
import type { GcCounters } from './gc-metrics';
import type { GcSettings, ProxyEviction } from './gc-settings';

/** A row the collector is working on, as its hooks see it. */
export type GcTarget = { kind: 'blob'; digest: string } | { kind: 'manifest'; repositoryId: number; digest: string } | { kind: 'object'; digest: string };

/**
 * Points where a test can pause the collector to race it against the API (each runs inside the collector's
 * transaction, holding what it has locked so far). None is set in production.
 */
export interface GcHooks {
  /** The candidate row (blob or manifest) is locked; its references are not yet re-checked. */
  afterLock?(target: GcTarget): Promise<void>;
  /** A blob's metadata delete has committed; its object is not yet deleted. */
  afterMetadataDelete?(target: GcTarget): Promise<void>;
  /** The object's tombstone is locked; blob rows and pins are not yet checked. */
  beforeObjectDelete?(target: GcTarget): Promise<void>;
}

/** The collector's dependencies and state, shared by its steps. */
export interface GcContext {
  db: Database;
  store: BlobStore;
  settings: GcSettings;
  /** The eviction rules in force now (the live proxy rules' `evictAfter`); `settings.evictions` when absent. */
  evictions?: () => ProxyEviction[];
  counters: GcCounters;
  logger: Logger;
  events: OutboxContext;
  /** Called after a transaction that wrote events commits (wakes the outbox relay). */
  onEventsCommitted?: () => void;
  hooks: GcHooks;
  /** While held (a backup copying objects), no blob object is deleted. */
  deletionHold: ObjectDeletionHold;
}

/**
 * Runs one review (its task claimed) in a `gc.review` span of its own trace: reviews come from the Postgres queue,
 * not from a request (the push that queued one may be long gone), so each review starts a trace of its own.
 */
export function reviewSpan<T>(queue: 'blob' | 'manifest', digest: string, review: () => Promise<T>): Promise<T> {
  return withSpan(SPAN_NAMES.gcReview, { 'lading.gc.queue': queue, 'lading.gc.digest': digest }, review, { parent: ROOT_CONTEXT });
}

/** The actor of the collector's events. */
export const GC_EVENT_CONTEXT: EventContext = { actor: { name: 'lading-gc', type: 'robot' }, request: null };

const QUERY_CANCELED = '57014';

/**
 * Why a collector statement could not go on without waiting: `busy` (a row it wanted is locked: NOWAIT or the lock
 * timeout), `timeout` (the statement timeout); null for any other error.
 */
export function lockConflict(err: unknown): 'busy' | 'timeout' | null {
  const code = sqlState(err);
  if (code === PG_ERRORS.lockNotAvailable || code === PG_ERRORS.deadlockDetected || code === PG_ERRORS.serializationFailure) return 'busy';
  if (code === QUERY_CANCELED) return 'timeout';
  return null;
}

/**
 * Puts a failed review off: undoes its work (back to the `gc_review` savepoint), reschedules it with `reschedule`,
 * and counts why — a busy row or a timeout (expected under load) or an error (logged). A failing task must never
 * hold up the queue behind it.
 */
export async function putReviewOff(
  tx: SqlExecutor,
  ctx: GcContext,
  queue: 'blob' | 'manifest',
  target: unknown,
  err: unknown,
  reschedule: () => Promise<unknown>,
): Promise<void> {
  await tx.query('ROLLBACK TO SAVEPOINT gc_review');
  await reschedule();
  const cause = lockConflict(err);
  if (cause) {
    ctx.counters.postponed[cause]++;
  } else {
    ctx.counters.errors++;
    ctx.logger.error({ err, target }, 'gc: a review failed; it is put off');
  }
  ctx.counters.reviews[queue].postponed++;
}

/** A short description of an error for logs and tombstones. */
export function describeError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  return `${typeof e?.code === 'string' ? `${e.code}: ` : ''}${String(e?.message ?? err)}`;
}
