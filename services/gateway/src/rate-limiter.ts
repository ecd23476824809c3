/**
 * Abuse limits at the gateway: token buckets per client address and per authenticated principal. A request that
 * finds its bucket empty is answered 429 TOOMANYREQUESTS with `Retry-After` (whole seconds until a token is back).
 */
import type { LadingConfig } from '@lading/config';
import { LruCache } from '@lading/cache';
import { OciError } from '@lading/oci';

/** One kind of bucket: its refill rate and its size. */
export interface BucketSettings {
  /** Tokens added per second; 0 turns the limit off. */
  rate: number;
  /** The most tokens a bucket holds (the burst a quiet client may spend at once). */
  burst: number;
}

/** Takes tokens from keyed buckets. */
export interface TokenBuckets {
  /** Takes one token for `key`; 0 when it had one, else the seconds until it will. */
  take(key: string): number;
}

/** The most keys whose buckets are remembered; the least recently seen are forgotten (a forgotten bucket is full). */
const MAX_TRACKED_KEYS = 100_000;

/** Creates keyed token buckets (none limit anything when `rate` is 0). */
export function createTokenBuckets(settings: BucketSettings, now: () => number = Date.now): TokenBuckets {
  if (settings.rate <= 0) return { take: () => 0 };
  const perMs = settings.rate / 1000;
  const buckets = new LruCache<string, { tokens: number; at: number }>({ maxEntries: MAX_TRACKED_KEYS });
  return {
    take(key) {
      const t = now();
      let bucket = buckets.get(key);
      if (!bucket) {
        bucket = { tokens: settings.burst, at: t };
        buckets.set(key, bucket);
      } else {
        bucket.tokens = Math.min(settings.burst, bucket.tokens + (t - bucket.at) * perMs);
        bucket.at = t;
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return 0;
      }
      return Math.max(1, Math.ceil((1 - bucket.tokens) / settings.rate));
    },
  };
}

/** The gateway's rate limits: per client address (every request) and per principal (once its token verified). */
export interface RateLimiter {
  /** Throws 429 when the address has no token left. */
  admitAddress(address: string): void;
  /** Throws 429 when the principal has no token left. */
  admitPrincipal(principal: string): void;
}

function tooMany(what: string, retryAfter: number): OciError {
  return new OciError('TOOMANYREQUESTS', `too many requests from this ${what}; retry after ${retryAfter}s`, { retryAfter }, { headers: { 'Retry-After': String(retryAfter) } });
}

/** Creates the gateway's rate limiter from `limits.*`. */
export function rateLimiterFromConfig(config: Pick<LadingConfig, 'limits'>, now: () => number = Date.now): RateLimiter {
  const addresses = createTokenBuckets({ rate: config.limits.addressRate, burst: config.limits.addressBurst }, now);
  const principals = createTokenBuckets({ rate: config.limits.principalRate, burst: config.limits.principalBurst }, now);
  return {
    admitAddress(address) {
      const wait = addresses.take(address);
      if (wait > 0) throw tooMany('address', wait);
    },
    admitPrincipal(principal) {
      const wait = principals.take(principal);
      if (wait > 0) throw tooMany('account', wait);
    },
  };
}
