/** The collector's settings, resolved once from the configuration: durations in milliseconds, policies by namespace. */
import { LadingConfig, ProxyConfig, durationMs } from '@lading/config';

/** A namespace's rules, with defaults filled in. */
export interface GcPolicy {
  namespace: string;
  deleteUntagged: boolean;
  keepLast: number | null;
  olderThanMs: number | null;
  /** Retention by pulls (`notPulledFor`): tags and untagged manifests not pulled for this long go. */
  notPulledForMs: number | null;
  tagPattern: RegExp | null;
  dryRun: boolean;
}

/** Everything the collector reads from the configuration. */
export interface GcSettings {
  reviewDelayMs: number;
  uploadTtlMs: number;
  /** A pin older than this belongs to an upload that died between committing its object and recording it. */
  pinTtlMs: number;
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  pollIntervalMs: number;
  sweepIntervalMs: number;
  /** How often namespace quota usage is reconciled with the references. */
  quotaReconcileIntervalMs: number;
  workers: number;
  /** A due task waiting longer than this counts as overdue in the metrics. */
  overdueMs: number;
  /** The longest a review or deletion is put off at a time: the review delay, within 5 s to 60 s. */
  maxBackoffMs: number;
  policies: GcPolicy[];
  /** The pull-through caches that evict content not pulled for `afterMs` (`proxies[].evictAfter`). */
  evictions: ProxyEviction[];
}

/** A pull-through cache's eviction rule. */
export interface ProxyEviction {
  namespace: string;
  afterMs: number;
}

/** The eviction rules of a list of proxy rules: those with `evictAfter`. */
export function proxyEvictions(proxies: readonly ProxyConfig[]): ProxyEviction[] {
  return proxies.flatMap((p) => (p.evictAfter ? [{ namespace: p.namespace, afterMs: durationMs(p.evictAfter) }] : []));
}

/** The rules of a repository that no configured policy covers. */
export const DEFAULT_POLICY: GcPolicy = { namespace: '', deleteUntagged: true, keepLast: null, olderThanMs: null, notPulledForMs: null, tagPattern: null, dryRun: false };

/** How long a pin protects an object: far longer than any commit-to-record window of a live upload. */
export const PIN_TTL_MS = 60 * 60_000;

/** Resolves the collector's settings from the configuration. */
export function gcSettings(config: LadingConfig): GcSettings {
  const pollIntervalMs = durationMs(config.gc.pollInterval);
  return {
    reviewDelayMs: durationMs(config.gc.reviewDelay),
    uploadTtlMs: durationMs(config.gc.uploadTtl),
    pinTtlMs: PIN_TTL_MS,
    lockTimeoutMs: durationMs(config.gc.lockTimeout),
    statementTimeoutMs: durationMs(config.gc.statementTimeout),
    pollIntervalMs,
    sweepIntervalMs: durationMs(config.gc.sweepInterval),
    quotaReconcileIntervalMs: durationMs(config.gc.quotaReconcileInterval),
    workers: config.gc.workers,
    overdueMs: Math.max(60_000, 2 * pollIntervalMs),
    maxBackoffMs: Math.min(60_000, Math.max(5_000, durationMs(config.gc.reviewDelay))),
    policies: config.gc.policies.map((p) => ({
      namespace: p.namespace.replace(/\/+$/, ''),
      deleteUntagged: p.deleteUntagged,
      keepLast: p.keepLast ?? null,
      olderThanMs: p.olderThan ? durationMs(p.olderThan) : null,
      notPulledForMs: p.notPulledFor ? durationMs(p.notPulledFor) : null,
      tagPattern: p.tagPattern ? new RegExp(p.tagPattern) : null,
      dryRun: p.dryRun,
    })),
    evictions: proxyEvictions(config.proxies),
  };
}

/** The policy of a repository: the configured one with the longest matching namespace, else the default. */
export function policyFor(settings: GcSettings, repository: string): GcPolicy {
  let best: GcPolicy | null = null;
  for (const p of settings.policies) {
    const matches = p.namespace === '' || repository === p.namespace || repository.startsWith(`${p.namespace}/`);
    if (matches && (!best || p.namespace.length > best.namespace.length)) best = p;
  }
  return best ?? DEFAULT_POLICY;
}

/** True when a policy has a retention rule. */
export function hasRetention(policy: GcPolicy): boolean {
  return policy.keepLast !== null || policy.olderThanMs !== null || policy.notPulledForMs !== null;
}

/** A backoff for a task put off `attempts` times: 0.5 s doubling up to `capMs`, with ±50 % jitter. */
export function backoffMs(attempts: number, capMs = 60_000, random: () => number = Math.random): number {
  const base = Math.min(capMs, 500 * 2 ** Math.min(attempts, 7));
  return Math.round(base * (0.5 + random()));
}

/** A duration in the configuration's words: `90d`, `12h`, `30m` or `45s`. */
export function describeDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${Math.round(ms / 1000)}s`;
}
