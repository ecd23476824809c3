/**
 * A short memory of directory sign-ins, as a wrapper around any {@link DirectoryClient}: a success is remembered for
 * `cacheTtl` (answered without asking the directory, so sign-ins go on through a short outage), a refusal for
 * `negativeCacheTtl` (a wrong password retried is not sent to the directory again meanwhile, nor counted there
 * against the account's lockout policy).
 *
 * Entries are keyed by an HMAC of the username and the password under a key made at start-up and held only in
 * memory: the password itself is never kept, and the keys are of no use to anyone who reads them without that key.
 * A different password for the same user is its own entry, so a refusal never locks out the right password.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { DirectoryClient, DirectoryIdentity } from './directory';

/** How long successes and refusals are remembered, and the clock. */
export interface DirectoryCacheOptions {
  cacheTtlMs: number;
  negativeCacheTtlMs: number;
  now: () => number;
  /** Most entries kept; the oldest go first beyond it. */
  maxEntries?: number;
}

/** Wraps a directory client with the cache; a cache of zero TTLs asks the directory every time. */
export function cachedDirectory(inner: DirectoryClient, options: DirectoryCacheOptions): DirectoryClient {
  const key = randomBytes(32);
  const maxEntries = options.maxEntries ?? 10_000;
  const entries = new Map<string, { identity: DirectoryIdentity | null; expiresAt: number }>();

  function remember(id: string, identity: DirectoryIdentity | null, ttlMs: number): void {
    if (ttlMs <= 0) return;
    entries.delete(id);
    entries.set(id, { identity, expiresAt: options.now() + ttlMs });
    while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
  }

  return {
    async authenticate(username, password) {
      const id = createHmac('sha256', key).update(username).update('\0').update(password).digest('base64url');
      const hit = entries.get(id);
      if (hit && hit.expiresAt > options.now()) return hit.identity;
      if (hit) entries.delete(id);
      const identity = await inner.authenticate(username, password);
      remember(id, identity, identity ? options.cacheTtlMs : options.negativeCacheTtlMs);
      return identity;
    },
  };
}
