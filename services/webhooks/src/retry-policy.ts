/**
 * What happens after a failed attempt: retry after an exponential backoff with full jitter (a random delay between
 * zero and `initial * 2^(attempt-1)`, capped at `max`), or dead-letter once the attempts or the age budget are spent.
 * A 429 or 503 with `Retry-After` is retried no sooner than it asks, but never later than the maximum backoff.
 */
import type { WebhookSettings } from './webhook-settings';

/** The decision after a failed attempt. */
export type RetryDecision = { kind: 'retry'; delayMs: number } | { kind: 'dead' };

/** What is known about the failed attempt. */
export interface FailedAttempt {
  /** Attempts made so far, this one included. */
  attempt: number;
  firstAttemptAt: number;
  now: number;
  status: number | null;
  /** The `Retry-After` header of the response, if any. */
  retryAfter?: string | null;
}

/** Parses `Retry-After` (delay seconds or an HTTP date) to milliseconds from `now`; null when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, now: number): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Decides whether and when to try again; `random` returns a number in [0, 1). */
export function decideRetry(settings: Pick<WebhookSettings, 'maxAttempts' | 'maxAgeMs' | 'backoffInitialMs' | 'backoffMaxMs'>, failed: FailedAttempt, random: () => number = Math.random): RetryDecision {
  if (failed.attempt >= settings.maxAttempts) return { kind: 'dead' };
  const deadline = failed.firstAttemptAt + settings.maxAgeMs;
  if (failed.now >= deadline) return { kind: 'dead' };
  const ceiling = Math.min(settings.backoffMaxMs, settings.backoffInitialMs * 2 ** Math.min(failed.attempt - 1, 52));
  let delayMs = Math.floor(random() * ceiling);
  if (failed.status === 429 || failed.status === 503) {
    const asked = retryAfterMs(failed.retryAfter, failed.now);
    if (asked !== null) delayMs = Math.min(Math.max(delayMs, asked), settings.backoffMaxMs);
  }
  // The last attempt happens at the age limit at the latest.
  return { kind: 'retry', delayMs: Math.max(0, Math.min(delayMs, deadline - failed.now)) };
}
