/**
 * The outbox pruner: deletes published outbox rows older than the retention (and audit log entries older than
 * theirs, `audit.retention`), in small batches, when asked (a process
 * prunes on a schedule, `events.pruneInterval`, through `runOutboxPruner` in libs/runtime). The
 * bus keeps the history for replay; the outbox only has to hold what is not yet published. Any number of processes
 * may prune at once (rows another pruner is deleting are skipped, a row deleted twice is deleted once), and it
 * never touches an unpublished or a parked row.
 */
import type { Database } from '@lading/metadata';
import { pruneAuditLog } from './audit-log';

/** What the pruner needs. */
export interface OutboxPrunerDeps {
  db: Database;
  /** Published rows older than this are deleted (`events.retention`). */
  retentionMs: number;
  /** Rows deleted per statement, so that one prune never holds many locks or a long transaction. */
  batchSize?: number;
  /** Audit log entries older than this are deleted too (`audit.retention`); the audit log is not pruned without it. */
  auditRetentionMs?: number;
}

/** An outbox pruner: one prune at a time, run by whoever asks. */
export interface OutboxPruner {
  /** Deletes every published row older than the retention now (joining a prune in progress); resolves with how many it deleted. */
  pruneOnce(): Promise<number>;
}

/** Creates an outbox pruner. */
export function createOutboxPruner(deps: OutboxPrunerDeps): OutboxPruner {
  const batchSize = deps.batchSize ?? 1000;
  let running: Promise<number> | null = null;

  async function pruneLoop(): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await deps.db.query(
        `DELETE FROM outbox WHERE id IN (
           SELECT id FROM outbox WHERE published_at IS NOT NULL AND published_at < now() - $1 * interval '1 millisecond'
            ORDER BY published_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [deps.retentionMs, batchSize],
      );
      total += deleted.rowCount;
      if (deleted.rowCount < batchSize) break;
    }
    if (deps.auditRetentionMs !== undefined) total += await pruneAuditLog(deps.db, deps.auditRetentionMs, batchSize);
    return total;
  }

  function pruneOnce(): Promise<number> {
    running ??= pruneLoop().finally(() => {
      running = null;
    });
    return running;
  }

  return { pruneOnce };
}
