/**
 * Last-pulled times, batched. A pull only notes (repository, digest, time) in a map (one set on the hot path, no
 * I/O); a polling loop flushes the map in one statement per batch (`recordManifestPulls`), and stopping flushes what
 * is left. Memory is bounded: past `maxPending` distinct manifests, pulls of new ones are dropped until the next
 * flush (which the first drop brings forward). A dropped or lost note only makes eviction count from an older pull.
 */
import * as meta from '@lading/metadata';
import type { SqlExecutor } from '@lading/metadata';
import { createPollingLoop } from '@lading/runtime';
import type { Logger, RegistryMetrics } from '@lading/telemetry';

/** What the recorder is built from. */
export interface PullRecorderDeps {
  db: SqlExecutor;
  logger: Logger;
  /** How often the pending pulls are written. */
  flushIntervalMs: number;
  /** The most distinct manifests kept pending between flushes. */
  maxPending?: number;
  /** The clock, in epoch milliseconds (tests move it). */
  now?: () => number;
  /** Counts dropped notes; none counted without it. */
  metrics?: Pick<RegistryMetrics, 'proxyPullNotesDropped'>;
}

/** Notes pulls and writes them in batches. */
export interface PullRecorder {
  /** Notes that a manifest of a repository was served now. */
  note(repository: string, digest: string): void;
  /** Writes the pending pulls in one statement; resolves with the number of manifests updated. */
  flush(): Promise<number>;
  /** Starts the periodic flush. */
  start(): void;
  /** Stops the periodic flush and writes what is pending. */
  stop(): Promise<void>;
  /** How many distinct manifests wait for the next flush. */
  readonly pending: number;
}

/** How often the pending pulls are written: eviction counts in days, so a pull may reach the database late. */
export const PULL_FLUSH_INTERVAL_MS = 10_000;

/** The default bound of pending pulls: about a few MB of keys. */
export const DEFAULT_MAX_PENDING_PULLS = 50_000;

/** Creates a pull recorder (stopped; call start()). */
export function createPullRecorder(deps: PullRecorderDeps): PullRecorder {
  const now = deps.now ?? Date.now;
  const maxPending = deps.maxPending ?? DEFAULT_MAX_PENDING_PULLS;
  /** `repository@digest` → the latest pull's time. */
  let pending = new Map<string, number>();
  let dropped = 0;

  async function flush(): Promise<number> {
    if (pending.size === 0) return 0;
    const batch = pending;
    pending = new Map();
    const pulls: meta.ManifestPull[] = [];
    for (const [key, at] of batch) {
      const sep = key.lastIndexOf('@');
      pulls.push({ repository: key.slice(0, sep), digest: key.slice(sep + 1), at });
    }
    try {
      const updated = await meta.recordManifestPulls(deps.db, pulls);
      if (dropped > 0) deps.logger.warn({ dropped, maxPending }, 'pull times: pulls were not recorded, too many were pending');
      dropped = 0;
      return updated;
    } catch (err) {
      // Put back (newer notes win) for the next flush, within the bound.
      for (const [key, at] of batch) if (!pending.has(key) && pending.size < maxPending) pending.set(key, at);
      throw err;
    }
  }

  const loop = createPollingLoop({
    step: async () => {
      await flush();
    },
    idleMs: deps.flushIntervalMs,
    delayFirstStep: true,
    onError: (err, retryInMs) => deps.logger.warn({ err, retryInMs }, 'pull times: a flush failed'),
  });

  return {
    note(repository, digest) {
      const key = `${repository}@${digest}`;
      if (pending.size >= maxPending && !pending.has(key)) {
        deps.metrics?.proxyPullNotesDropped.add(1);
        if (dropped++ === 0) loop.wake();
        return;
      }
      pending.set(key, now());
    },
    flush,
    start: () => loop.start(),
    async stop() {
      await loop.stop();
      await flush().catch((err: unknown) => deps.logger.warn({ err }, 'pull times: the last flush failed'));
    },
    get pending() {
      return pending.size;
    },
  };
}
