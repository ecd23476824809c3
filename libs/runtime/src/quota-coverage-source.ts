/**
 * Which namespaces have a quota, kept current in a process that checks quotas (the embedded registry, the distributed
 * blob and manifest services), so that a push or blob commit into a repository no quota covers skips the quota query
 * (`QuotaCoverage` of @lading/metadata). Kept like the stored proxy rules (proxy-rules-source.ts): read at start,
 * read again every `QUOTA_COVERAGE_POLL_MS`, and at once by the process whose admin API changed a quota
 * (`refresh`, called before the admin's answer).
 *
 * The bound: a quota set on a namespace that had none is enforced by this process at once when this process set it
 * (the embedded registry), and within one poll interval otherwise (a distributed blob or manifest service hearing a
 * change made through the auth service), plus the time of one read. A changed or removed quota is seen at once
 * everywhere, because a covered write reads the quotas in its own transaction. A failed read keeps the coverage in
 * force and is retried with backoff.
 */
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import type { Logger } from '@lading/telemetry';
import { type InterruptibleSleep, openPolledState } from './polling-loop';

/** How often a process reads which namespaces have a quota: the bound on a new quota reaching another process. */
export const QUOTA_COVERAGE_POLL_MS = 5_000;

/** The live quota coverage of a process. */
export interface LiveQuotaCoverage extends meta.QuotaCoverage {
  /** Reads the namespaces with a quota now and puts the result in force (the process that changed one calls it). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/** What the live coverage is read with. */
export interface QuotaCoverageSourceDeps {
  db: Pick<Database, 'query'>;
  logger: Logger;
  /** QUOTA_COVERAGE_POLL_MS by default. */
  pollIntervalMs?: number;
  /** The poll's sleep, for tests to drive (see createPollingLoop); a real timer by default. */
  sleep?: InterruptibleSleep;
}

/**
 * Starts the live quota coverage: resolves once it has been read (rejecting when it cannot be), then polls until
 * close(). Reads run one at a time, so an older read never replaces a newer one.
 */
export async function openQuotaCoverage(deps: QuotaCoverageSourceDeps): Promise<LiveQuotaCoverage> {
  let coverage = meta.quotaCoverageOf([]);
  let inForce = '';
  const state = await openPolledState({
    async load() {
      const prefixes = await meta.namespacePrefixesWithQuota(deps.db);
      const text = prefixes.join('\n');
      coverage = meta.quotaCoverageOf(prefixes);
      if (text !== inForce) deps.logger.debug({ namespaces: prefixes }, 'namespaces with a quota changed');
      inForce = text;
    },
    pollIntervalMs: deps.pollIntervalMs ?? QUOTA_COVERAGE_POLL_MS,
    sleep: deps.sleep,
    onError: (err, retryInMs) => deps.logger.error({ err, retryInMs }, 'cannot read which namespaces have a quota; the coverage in force stays'),
  });
  return {
    mayCover: (repository) => coverage.mayCover(repository),
    refresh: () => state.refresh(),
    close: () => state.close(),
  };
}
