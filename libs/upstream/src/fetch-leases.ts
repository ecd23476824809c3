/**
 * Single flight of the pull-through cache across processes (blob replicas, manifest replicas): of all the processes
 * that miss the same content at once, the one holding its fetch lease in the database (`proxy_fetch_leases`, see
 * libs/metadata) asks the upstream; the others poll until the content is stored and answer from the cache.
 *
 * Invariants:
 * - The content is looked up after the lease is taken, so a fetch that ended just before is never repeated.
 * - A lease is renewed every third of its length while its fetch runs and deleted when the fetch ends, stored or
 *   failed. A holder that died stops renewing: its lease expires and the next poller takes the fetch over, so no
 *   lease blocks a key for longer than `leaseMs`. A failed fetch's waiters find the lease free and try in turn.
 */
import { randomUUID } from 'node:crypto';
import { type SqlExecutor, releaseFetchLease, renewFetchLease, takeFetchLease } from '@lading/metadata';
import type { Logger } from '@lading/telemetry';

/** How long a fetch's lease lasts unless renewed: long enough that renewals rarely race it, short enough to take over. */
export const FETCH_LEASE_MS = 10_000;

/** The waits between looks at a lease another process holds (ms): from `first`, growing by half, up to `max`. */
export const FETCH_POLL_MS = { first: 100, max: 1000 };

/** What the leases are built from. */
export interface FetchLeasesDeps {
  db: SqlExecutor;
  logger: Logger;
  /** How long a lease lasts unless renewed (`FETCH_LEASE_MS`); tests shorten it. */
  leaseMs?: number;
  /** The polling of a held lease (`FETCH_POLL_MS`). */
  pollMs?: { first: number; max: number };
}

/** One fetch to single-flight across processes. */
export interface LeasedFetch<T> {
  /** The lease's key: what is fetched (e.g. `<repository>@<digest>`). */
  key: string;
  /** The content if it is stored now, else null: looked up after every take of the lease and every poll. */
  stored(): Promise<T | null>;
  /** Fetches and stores the content; run only while the lease is held. */
  fetch(): Promise<T>;
  /** Called once, when the lease is first found held by another process. */
  onWait?(): void;
}

/** Runs fetches once across processes. */
export interface FetchLeases {
  /**
   * The content: fetched here under its lease (`waited` false), or found stored, by another process or before the
   * lease was taken (`waited` true: this process fetched nothing). Rejects with the fetch's error.
   */
  once<T>(job: LeasedFetch<T>): Promise<{ value: T; waited: boolean }>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Creates the fetch leases over the registry's database. */
export function createFetchLeases(deps: FetchLeasesDeps): FetchLeases {
  const { db, logger } = deps;
  const leaseMs = deps.leaseMs ?? FETCH_LEASE_MS;
  const pollMs = deps.pollMs ?? FETCH_POLL_MS;

  /** Runs `fetch` while `holder` holds the lease of `key`, renewing it meanwhile, and releases it however it ends. */
  async function underLease<T>(key: string, holder: string, fetch: () => Promise<T>): Promise<T> {
    const renewal = setInterval(() => {
      renewFetchLease(db, key, holder, leaseMs).then(
        (held) => {
          if (!held) logger.warn({ key }, 'pull-through: a fetch outlived its lease; another process may be fetching the same content');
        },
        (err: unknown) => logger.warn({ err, key }, 'pull-through: a fetch lease could not be renewed'),
      );
    }, Math.max(1, Math.floor(leaseMs / 3)));
    renewal.unref();
    try {
      return await fetch();
    } finally {
      clearInterval(renewal);
      await releaseFetchLease(db, key, holder).catch((err: unknown) => logger.warn({ err, key }, 'pull-through: a fetch lease could not be released; it expires'));
    }
  }

  return {
    async once(job) {
      let delay = pollMs.first;
      let waited = false;
      for (;;) {
        const holder = randomUUID();
        const taken = await takeFetchLease(db, job.key, holder, leaseMs);
        if (taken) return underLease(job.key, holder, async () => {
          const stored = await job.stored();
          return stored !== null ? { value: stored, waited: true } : { value: await job.fetch(), waited: false };
        });
        const stored = await job.stored();
        if (stored !== null) return { value: stored, waited: true };
        if (!waited) job.onWait?.();
        waited = true;
        await sleep(delay);
        delay = Math.min(pollMs.max, Math.ceil(delay * 1.5));
      }
    },
  };
}
