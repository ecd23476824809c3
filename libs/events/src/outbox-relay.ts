/**
 * The outbox relay: publishes committed outbox rows to the bus at least once, in per-repository sequence order, and
 * marks them only after the bus accepted them.
 *
 * The work is cut into `partitions` slices (a stable hash of the repository, stored on the row, modulo the count).
 * Each slice is published under its own transaction-scoped advisory lock, `pg_try_advisory_xact_lock(RELAY_LOCK_KEY,
 * slice)`: any number of relays (one per service replica) share the slices, exactly one of them publishes a given
 * slice at a time, and since every event of a repository falls in one slice, a repository's events never overtake
 * each other. Every relay on one database must use the same number of partitions.
 *
 * Why nothing is skipped (the sequence-visibility trap): the relay never keeps a high-water mark; it reads every
 * pending row each time. Within a repository, `appendEvent` takes the next sequence number by updating the
 * repository's row, which holds that row's lock until commit, so a repository's rows commit in sequence order and a
 * rolled-back change leaves no gap. A slice's lock is released only after the transaction that marked its rows
 * committed, so the next holder's snapshot sees those marks.
 *
 * Failures: a bus outage (any error but `EventsRefusedError`) changes no row; the drain rejects and is retried (the
 * process runs the drain in a polling loop, `runOutboxRelay` in libs/runtime, on a timer and on every kick).
 * When the bus refuses a batch, the relay publishes it row by row to find the culprit; a refused row gets
 * `attempts + 1` and its error, and holds back the later rows of its repository (order) until it is published or,
 * after `maxAttempts` refusals, parked (`parked_at`). A parked row no longer blocks its repository: later events are
 * published past it, consumers see a gap in `sequence`, `lading_outbox_parked` alerts and an admin can requeue it.
 */
import { Link, ROOT_CONTEXT } from '@opentelemetry/api';
import type { Database, SqlExecutor } from '@lading/metadata';
import { SPAN_ATTRIBUTES, SPAN_NAMES, linkFromTraceparent, withItemSpans, withSpan } from '@lading/telemetry';
import { EventBus, isEventsRefused } from './bus';
import type { LadingEvent } from './event-types';

/** The advisory-lock key (first of the two-key form) of the relay's slices; the second key is the slice number. */
export const RELAY_LOCK_KEY = 7340002;

/** The SQL expression of a row's slice, given the parameter holding the number of partitions (e.g. `$1`). */
export function outboxSliceSql(partitionsParam: string, table = 'outbox'): string {
  return `mod(${table}.repository_hash::bigint + 2147483648, ${partitionsParam})`;
}

/** The relay's process counters (since the process started), exported as `lading_outbox_*_total` (observeRelay). */
export interface OutboxRelayCounters {
  /** Events the bus accepted. */
  published: number;
  /** Drains that failed because the bus was unavailable. */
  publishFailures: number;
  /** Single events the bus refused (each counts one attempt of its row). */
  refused: number;
  /** Rows this process parked. */
  parked: number;
}

/** A row the relay just parked, for a log line. */
export interface ParkedOutboxRow {
  id: string;
  repository: string;
  sequence: number;
  attempts: number;
  error: string;
}

/** What the relay needs. */
export interface OutboxRelayDeps {
  db: Database;
  bus: EventBus;
  batchSize?: number;
  /** Slices of the work (`events.relayPartitions`); the same on every relay of a database. */
  partitions?: number;
  /** Refusals after which a row is parked (`events.maxAttempts`). */
  maxAttempts?: number;
  /** Told about every row this relay parks (the alert itself is the metric). */
  onParked?: (row: ParkedOutboxRow) => void;
  /** Told, after they were marked published (committed), which events this relay published: for metrics by type. */
  onPublished?: (events: LadingEvent[]) => void;
}

/**
 * An outbox relay: one drain at a time, run by whoever asks (a process's polling loop, a test, an admin flush).
 */
export interface OutboxRelay {
  /**
   * Publishes everything pending now; resolves with the number of events published, rejects on a bus outage. A drain
   * asked for while one runs joins it, and makes it go round once more (for the rows committed since it began).
   */
  drain(): Promise<number>;
  /** This process's counters. */
  readonly counters: Readonly<OutboxRelayCounters>;
}

interface ClaimedRow {
  id: string;
  repository: string;
  sequence: number;
  attempts: number;
  event: unknown;
}

interface SliceOutcome {
  claimed: number;
  published: LadingEvent[];
  parked: number;
  failure?: unknown;
}

/** The event of a row, or null when the row holds nothing the bus could carry (refused by the relay itself). */
function eventOf(row: ClaimedRow): LadingEvent | null {
  let event = row.event;
  if (typeof event === 'string') {
    try {
      event = JSON.parse(event);
    } catch {
      return null;
    }
  }
  const e = event as Partial<LadingEvent> | null;
  if (!e || typeof e !== 'object' || typeof e.id !== 'string' || typeof e.type !== 'string' || e.partitionkey !== row.repository) return null;
  return e as LadingEvent;
}

/**
 * Hands events to the bus inside an `outbox.relay` span of its own trace (one batch carries many requests' events),
 * linked to each event's trace, with one `outbox.publish` span per event parented by the request that wrote it, so
 * that each push's trace shows its events leaving the outbox.
 */
export function publishTraced(bus: EventBus, events: LadingEvent[]): Promise<void> {
  const links = events.map((e) => linkFromTraceparent(e.traceparent)).filter((l): l is Link => l !== undefined);
  return withSpan(
    SPAN_NAMES.outboxRelayBatch,
    { 'messaging.batch.message_count': events.length, 'messaging.system': bus.driverName },
    () =>
      withItemSpans(
        SPAN_NAMES.outboxPublish,
        events.map((e) => ({ traceparent: e.traceparent, attributes: { [SPAN_ATTRIBUTES.eventType]: e.type, [SPAN_ATTRIBUTES.eventId]: e.id, [SPAN_ATTRIBUTES.repository]: e.partitionkey } })),
        () => bus.publish(events),
      ),
    { parent: ROOT_CONTEXT, links },
  );
}

const errorText = (err: unknown) => String((err as Error)?.message ?? err).slice(0, 1000);

/** Creates an outbox relay over a database and a bus (it drains when asked; see `runOutboxRelay` to run it). */
export function createOutboxRelay(deps: OutboxRelayDeps): OutboxRelay {
  const batchSize = deps.batchSize ?? 256;
  const partitions = deps.partitions ?? 8;
  const maxAttempts = deps.maxAttempts ?? 10;
  const counters: OutboxRelayCounters = { published: 0, publishFailures: 0, refused: 0, parked: 0 };
  let running: Promise<number> | null = null;
  let again = false;
  let nextSlice = 0;

  /**
   * Takes the slice's lock and claims its next pending rows, in one statement: the lock is an InitPlan, evaluated
   * once before any row is read, and when another relay holds the slice the statement reads and locks nothing. A
   * repository whose head row was refused before offers only that row.
   */
  function lockAndClaim(tx: SqlExecutor, slice: number) {
    return tx.query<ClaimedRow>(
      `SELECT o.id::text AS id, o.repository, o.sequence, o.attempts, o.event FROM outbox o
        WHERE (SELECT pg_try_advisory_xact_lock($4, $2))
          AND o.published_at IS NULL AND o.parked_at IS NULL AND ${outboxSliceSql('$1', 'o')} = $2
          AND NOT EXISTS (SELECT 1 FROM outbox b WHERE b.repository = o.repository AND b.published_at IS NULL
                            AND b.parked_at IS NULL AND b.attempts > 0 AND b.sequence < o.sequence)
        ORDER BY o.repository, o.sequence LIMIT $3 FOR UPDATE OF o`,
      [partitions, slice, batchSize, RELAY_LOCK_KEY],
    );
  }

  async function publishSlice(slice: number): Promise<SliceOutcome> {
    return deps.db.transaction(async (tx): Promise<SliceOutcome> => {
      // No rows: the slice is empty, or another relay holds it (and publishes them).
      const rows = (await lockAndClaim(tx, slice)).rows;
      if (rows.length === 0) return { claimed: 0, published: [], parked: 0 };
      const events = new Map(rows.map((r) => [r.id, eventOf(r)]));
      const published: string[] = [];
      const refused: Array<{ row: ClaimedRow; error: string }> = [];
      let failure: unknown;

      // Rows never refused go as one batch; rows refused before, and every row of a refused batch, go one by one.
      const fresh = rows.filter((r) => r.attempts === 0 && events.get(r.id));
      let single = rows.filter((r) => !fresh.includes(r));
      if (fresh.length > 0) {
        try {
          await publishTraced(deps.bus, fresh.map((r) => events.get(r.id) as LadingEvent));
          published.push(...fresh.map((r) => r.id));
        } catch (err) {
          if (isEventsRefused(err)) single = rows;
          else failure = err;
        }
      }
      if (failure === undefined) {
        const blocked = new Set<string>();
        for (const row of single) {
          if (blocked.has(row.repository)) continue;
          const event = events.get(row.id);
          if (!event) {
            refused.push({ row, error: 'the outbox row holds no publishable event record' });
            blocked.add(row.repository);
            continue;
          }
          try {
            await publishTraced(deps.bus, [event]);
            published.push(row.id);
          } catch (err) {
            if (!isEventsRefused(err)) {
              failure = err;
              break;
            }
            refused.push({ row, error: errorText(err) });
            blocked.add(row.repository);
          }
        }
      }

      if (published.length > 0) await tx.query(`UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])`, [published]);
      let parked = 0;
      for (const { row, error } of refused) {
        const r = await tx.query<{ attempts: number; parked: boolean }>(
          `UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                  parked_at = CASE WHEN attempts + 1 >= $3 THEN now() END
            WHERE id = $1 RETURNING attempts, parked_at IS NOT NULL AS parked`,
          [row.id, error, maxAttempts],
        );
        counters.refused++;
        if (r.rows[0]?.parked) {
          parked++;
          counters.parked++;
          deps.onParked?.({ id: row.id, repository: row.repository, sequence: row.sequence, attempts: r.rows[0].attempts, error });
        }
      }
      return { claimed: rows.length, published: published.map((id) => events.get(id) as LadingEvent), parked, failure };
      // The marks need not wait for the disk: one lost in a crash is an event published again (at least once).
    }, { awaitDurable: false });
  }

  /**
   * The slices holding rows to publish, as this statement sees them: one query instead of a transaction per empty
   * slice (a push kicks the relay several times). A row committed after it is the next drain's: its writer kicks
   * after committing (which makes the running drain go round again, or starts the next), and the loop's timer drains
   * in any case.
   */
  async function slicesWithWork(): Promise<Set<number>> {
    const r = await deps.db.query<{ slice: number }>(
      `SELECT DISTINCT ${outboxSliceSql('$1')}::int AS slice FROM outbox WHERE published_at IS NULL AND parked_at IS NULL`,
      [partitions],
    );
    return new Set(r.rows.map((row) => Number(row.slice)));
  }

  async function drainLoop(): Promise<number> {
    let total = 0;
    do {
      again = false;
      const first = nextSlice++ % partitions;
      const busy = await slicesWithWork();
      for (let i = 0; i < partitions; i++) {
        const slice = (first + i) % partitions;
        if (!busy.has(slice)) continue;
        for (;;) {
          const outcome = await publishSlice(slice);
          total += outcome.published.length;
          counters.published += outcome.published.length;
          if (outcome.published.length > 0) deps.onPublished?.(outcome.published);
          if (outcome.failure !== undefined) {
            counters.publishFailures++;
            throw outcome.failure;
          }
          // Go on while a full batch made progress, or a row was parked (the rows it held back are free now);
          // refusals alone wait for the next drain, so that attempts are spread over time.
          if (outcome.parked === 0 && (outcome.claimed < batchSize || outcome.published.length === 0)) break;
        }
      }
    } while (again);
    return total;
  }

  function drain(): Promise<number> {
    if (running) {
      again = true;
      return running;
    }
    running = drainLoop().finally(() => {
      running = null;
    });
    return running;
  }

  return { drain, counters };
}
