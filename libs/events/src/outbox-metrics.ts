/**
 * The outbox in Prometheus text format: what is waiting (backlog and lag, from the database, so every process reports
 * the same figures), what is parked (the alert: a parked row is an event consumers have not seen), and this process's
 * relay counters.
 */
import type { SqlExecutor } from '@lading/metadata';
import type { OutboxRelayCounters } from './outbox-relay';

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

/** Renders the outbox metrics as Prometheus text (exposition format 0.0.4). */
export async function renderOutboxMetrics(db: SqlExecutor, counters: Readonly<OutboxRelayCounters>): Promise<string> {
  const g = await readOutboxGauges(db);
  const metric = (name: string, type: 'gauge' | 'counter', help: string, value: number) =>
    `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}\n`;
  return [
    metric('lading_outbox_backlog', 'gauge', 'Outbox events not yet published (parked ones excluded).', g.backlog),
    metric('lading_outbox_oldest_unpublished_age_seconds', 'gauge', 'Age of the oldest unpublished outbox event: the relay lag.', g.oldestUnpublishedAgeSeconds),
    metric('lading_outbox_parked', 'gauge', 'Outbox events parked after the bus refused them events.maxAttempts times; alert when above 0.', g.parked),
    metric('lading_outbox_published_total', 'counter', 'Events this process published to the bus.', counters.published),
    metric('lading_outbox_publish_failures_total', 'counter', 'Relay drains of this process that failed because the bus was unavailable.', counters.publishFailures),
    metric('lading_outbox_refused_total', 'counter', 'Single events the bus refused in this process (each an attempt of its row).', counters.refused),
  ].join('');
}
