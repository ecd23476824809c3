/**
 * The pulls of the audit trail, aggregated. A manifest GET or HEAD answered (200 or 304) only adds one to a counter
 * in memory, keyed by (principal, repository): no I/O and, for a pair already counted, no allocation on the hot
 * path. Every `audit.pullWindow` the counters are swapped out and written as one `io.lading.audit.pulls` event (one
 * transaction: the outbox row and one audit log row per pair); stopping writes what is left. A window that fails to
 * be written is put back and retried with the next. Memory is bounded: past `maxPairs` distinct pairs, pulls of a
 * new pair are dropped (and logged with the next write, which they bring forward).
 */
import { identityOfSubject } from '@lading/access';
import { AUDIT_EVENT_TYPES, type AuditDataOf, type OutboxContext, appendAuditEvent } from '@lading/events';
import { durationMs } from '@lading/config';
import type { Database } from '@lading/metadata';
import { type ServiceDeps, createPollingLoop } from '@lading/runtime';
import type { Logger } from '@lading/telemetry';

/** Writes one window of pulls (in a transaction of its own); the default appends the audit event. */
export type PullBatchWriter = (data: AuditDataOf<typeof AUDIT_EVENT_TYPES.pulls>) => Promise<void>;

/** What the pull audit is built from. */
export interface PullAuditDeps {
  db: Database;
  events: OutboxContext;
  logger: Logger;
  /** How long pulls are counted before one batch is written (`audit.pullWindow`). */
  windowMs: number;
  /** The most distinct (principal, repository) pairs counted in one window. */
  maxPairs?: number;
  /** Writes a window; tests wrap the default to count writes. */
  write?: PullBatchWriter;
  /** Called after a window was written (wakes the outbox relay). */
  onEventsCommitted?: () => void;
  /** The clock, epoch milliseconds. */
  now?: () => number;
}

/** Counts pulls and writes them a window at a time. */
export interface PullAudit {
  /** Counts `count` (default 1) pulls of `repository` by `principal` (the token subject, '' for anonymous). */
  note(principal: string, repository: string, count?: number): void;
  /** Writes the pulls counted so far as one batch (nothing when there are none); resolves with the pairs written. */
  flush(): Promise<number>;
  /** Starts the periodic writes. */
  start(): void;
  /** Stops the periodic writes and writes what is left. */
  stop(): Promise<void>;
  /** The pairs counted since the last write. */
  readonly pending: number;
}

/** The default bound of pairs per window (about a few MB). */
export const DEFAULT_MAX_PULL_PAIRS = 100_000;

/** The default writer: the pulls event and its audit log rows, in one transaction. */
export function pullBatchWriter(db: Database, events: OutboxContext): PullBatchWriter {
  return async (data) => {
    await db.transaction((tx) => appendAuditEvent(tx, events, { type: AUDIT_EVENT_TYPES.pulls, data }));
  };
}

/** Creates the pull audit (stopped; call start()). */
export function createPullAudit(deps: PullAuditDeps): PullAudit {
  const now = deps.now ?? Date.now;
  const maxPairs = deps.maxPairs ?? DEFAULT_MAX_PULL_PAIRS;
  const write = deps.write ?? pullBatchWriter(deps.db, deps.events);
  /** principal → repository → pulls: two lookups, no key string built per pull. */
  let counts = new Map<string, Map<string, number>>();
  let pairs = 0;
  let windowStart = 0;
  let dropped = 0;

  async function flush(): Promise<number> {
    if (pairs === 0) return 0;
    const batch = counts;
    const start = windowStart;
    counts = new Map();
    pairs = 0;
    const pulls: AuditDataOf<typeof AUDIT_EVENT_TYPES.pulls>['pulls'] = [];
    for (const [principal, repositories] of batch) {
      const actor = identityOfSubject(principal);
      for (const [repository, count] of repositories) pulls.push({ actor, repository, count });
    }
    try {
      await write({ windowStart: new Date(start).toISOString(), windowEnd: new Date(now()).toISOString(), pulls });
    } catch (err) {
      // Put back for the next window (the counts add up), within the bound.
      for (const p of pulls) add(p.actor.type === 'robot' ? `robot$${p.actor.name}` : (p.actor.name ?? ''), p.repository, p.count, start);
      throw err;
    }
    deps.onEventsCommitted?.();
    if (dropped > 0) deps.logger.warn({ dropped, maxPairs }, 'audit: pulls were not counted, too many principals and repositories in one window');
    dropped = 0;
    return pulls.length;
  }

  function add(principal: string, repository: string, n: number, at: number): void {
    let repositories = counts.get(principal);
    const before = repositories?.get(repository);
    if (before !== undefined) {
      repositories!.set(repository, before + n);
      return;
    }
    if (pairs >= maxPairs) {
      if (dropped++ === 0) loop.wake();
      return;
    }
    if (pairs === 0) windowStart = at;
    if (!repositories) counts.set(principal, (repositories = new Map()));
    repositories.set(repository, n);
    pairs++;
  }

  const loop = createPollingLoop({
    step: async () => {
      await flush();
    },
    idleMs: deps.windowMs,
    delayFirstStep: true,
    onError: (err, retryInMs) => deps.logger.warn({ err, retryInMs }, 'audit: a window of pulls could not be written'),
  });

  return {
    note(principal, repository, count = 1) {
      if (count <= 0) return;
      add(principal, repository, count, pairs === 0 ? now() : windowStart);
    },
    flush,
    start: () => loop.start(),
    async stop() {
      await loop.stop();
      await flush().catch((err: unknown) => deps.logger.warn({ err }, 'audit: the last window of pulls could not be written'));
    },
    get pending() {
      return pairs;
    },
  };
}

/** The pull audit of a service by its configuration (`audit.enabled`, `audit.pullWindow`), started; none when auditing is off. */
export function startPullAudit(deps: ServiceDeps): PullAudit | undefined {
  if (!deps.config.audit.enabled) return undefined;
  const audit = createPullAudit({
    db: deps.db,
    events: deps.events,
    logger: deps.logger,
    windowMs: durationMs(deps.config.audit.pullWindow),
    onEventsCommitted: deps.onEventsCommitted,
  });
  audit.start();
  return audit;
}
