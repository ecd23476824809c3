/**
 * The outbox figures behind `lading_outbox_*`: what is waiting (backlog and lag, from the database, so every process
 * reports the same figures) and what is parked (the alert: a parked row is an event consumers have not seen). They
 * are exported, with the relay's counters, by @lading/telemetry's `observeOutbox` / `observeRelay` (see
 * @lading/runtime's openProcessParts).
 */
import type { SqlExecutor } from '@lading/metadata';

/** The outbox figures read from the database. */
export interface OutboxGauges {
  /** Rows neither published nor parked. */
  backlog: number;
  /** Age of the oldest such row, 0 when there is none. */
  oldestUnpublishedAgeSeconds: number;
  /** Parked rows. */
  parked: number;
}

/** Reads the outbox gauges (each query runs on a partial index, never over the published history). */
export async function readOutboxGauges(db: SqlExecutor): Promise<OutboxGauges> {
  const pending = await db.query<{ n: number; oldest: number | null }>(
    `SELECT count(*)::int AS n, EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS oldest
       FROM outbox WHERE published_at IS NULL AND parked_at IS NULL`,
  );
  const parked = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE parked_at IS NOT NULL`);
  return {
    backlog: Number(pending.rows[0]?.n ?? 0),
    oldestUnpublishedAgeSeconds: Math.max(0, Number(pending.rows[0]?.oldest ?? 0)),
    parked: Number(parked.rows[0]?.n ?? 0),
  };
}
