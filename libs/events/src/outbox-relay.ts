/**
 * The outbox relay: claims unpublished rows (`FOR UPDATE SKIP LOCKED`, so several relays never publish the same
 * row at once), publishes them in per-repository sequence order, and marks them only after the bus accepted them.
 * Any number of replicas may run a relay; a transaction-scoped advisory lock makes exactly one of them publish at a
 * time, so a repository's events never overtake each other across relays.
 */
import type { Database } from '@lading/metadata';
import type { EventBus } from './bus';
import type { LadingEvent } from './event-types';

/** The advisory-lock key that elects the publishing relay. */
export const RELAY_LOCK_KEY = 7340002;

/** What the relay needs. */
export interface OutboxRelayDeps {
  db: Database;
  bus: EventBus;
  batchSize?: number;
  /** How often to look for rows when nobody kicks the relay. */
  intervalMs?: number;
  onError?: (err: unknown) => void;
}

/** A running relay. */
export interface OutboxRelay {
  /** Publishes everything pending now; resolves with the number of events published. */
  drain(): Promise<number>;
  /** Asks the relay to drain soon (after a commit that wrote events). */
  kick(): void;
  start(): void;
  stop(): Promise<void>;
}

/** Creates an outbox relay over a database and a bus. */
export function createOutboxRelay(deps: OutboxRelayDeps): OutboxRelay {
  const batchSize = deps.batchSize ?? 256;
  const intervalMs = deps.intervalMs ?? 1000;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | null = null;
  let again = false;
  let stopped = true;

  async function publishBatch(): Promise<number> {
    // A failed publish is recorded (attempts, last_error) in a transaction that commits, then rethrown.
    const outcome = await deps.db.transaction(async (tx): Promise<{ published: number } | { failure: unknown }> => {
      const leader = await tx.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock($1) AS ok`, [RELAY_LOCK_KEY]);
      if (!leader.rows[0]?.ok) return { published: 0 };
      const claimed = await tx.query<{ id: string; event: LadingEvent }>(
        `SELECT id, event FROM outbox WHERE published_at IS NULL
           ORDER BY repository, sequence LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [batchSize],
      );
      if (claimed.rows.length === 0) return { published: 0 };
      try {
        await deps.bus.publish(claimed.rows.map((r) => (typeof r.event === 'string' ? JSON.parse(r.event) : r.event)));
      } catch (err) {
        await tx.query(`UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::uuid[])`, [
          claimed.rows.map((r) => r.id),
          String((err as Error)?.message ?? err).slice(0, 1000),
        ]);
        return { failure: err };
      }
      await tx.query(`UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY($1::uuid[])`, [
        claimed.rows.map((r) => r.id),
      ]);
      return { published: claimed.rows.length };
    });
    if ('failure' in outcome) throw outcome.failure;
    return outcome.published;
  }

  async function drainLoop(): Promise<number> {
    let total = 0;
    do {
      again = false;
      for (;;) {
        const n = await publishBatch();
        total += n;
        if (n < batchSize) break;
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

  const safeDrain = () =>
    drain().catch((err) => {
      deps.onError?.(err);
      return 0;
    });

  return {
    drain,
    kick() {
      if (!stopped) void safeDrain();
    },
    start() {
      stopped = false;
      timer = setInterval(() => void safeDrain(), intervalMs);
      timer.unref();
      void safeDrain();
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      if (running) await running.catch(() => undefined);
    },
  };
}
