/**
 * The console's session at the gateway: a request that carries the session cookie (and no Authorization header)
 * is authorized with a bearer token the auth service mints for the session's principal, carrying the access the
 * route needs, as a Docker client's would. The token service decides what the session may do (the same grants, the
 * same anonymous rules); the gateway's authorization stays the one check of every request.
 *
 * Minted tokens are remembered per session and access for a short while (`SESSION_TOKEN_CACHE_MS`), so a page of
 * the console does not mint one per request. The cost: a session signed out on another gateway replica, or whose
 * credential died, keeps working here that long at most; a sign-out through this replica forgets at once.
 */
import { Access, formatScope } from '@lading/access';
import { LruCache } from '@lading/cache';

/** How long a minted session token is reused by one gateway. */
export const SESSION_TOKEN_CACHE_MS = 15_000;

/** Mints a bearer token for a session with the access it holds of `access`; null when the session is not valid. */
export type SessionExchange = (session: string, access: Access[]) => Promise<string | null>;

/** Turns console sessions into bearer tokens; see the top of this file. */
export interface SessionTokens {
  /** A bearer token of the session for `access`, or null when the session is not (or no longer) valid. */
  tokenFor(session: string, access: Access[]): Promise<string | null>;
  /** Forgets the session's tokens (it is being signed out). */
  forget(session: string): void;
}

/** Creates the session tokens of one gateway over an exchange. */
export function createSessionTokens(exchange: SessionExchange, options: { entries?: number; now?: () => number } = {}): SessionTokens {
  const minted = new LruCache<string, string | null>({ maxEntries: options.entries ?? 10_000, ttlMs: SESSION_TOKEN_CACHE_MS, now: options.now });
  return {
    async tokenFor(session, access) {
      const key = `${session}\n${access.map(formatScope).join(' ')}`;
      const hit = minted.get(key);
      if (hit !== undefined) return hit;
      const token = await exchange(session, access);
      minted.set(key, token);
      return token;
    },
    forget(session) {
      minted.deleteWhere((key) => key.startsWith(`${session}\n`));
    },
  };
}

/**
 * The exchange of a distributed gateway: the auth service's public token endpoint, asked with the OAuth2
 * refresh_token grant (the session is a non-rotating refresh token), replicas taken in turn.
 */
export function exchangeOverHttp(authUrls: string[], service: string, timeoutMs: number): SessionExchange {
  let next = 0;
  return async (session, access) => {
    const base = authUrls[next++ % authUrls.length].replace(/\/$/, '');
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: session, service });
    if (access.length > 0) form.set('scope', access.map(formatScope).join(' '));
    const res = await fetch(`${base}/token`, { method: 'POST', body: form, signal: AbortSignal.timeout(timeoutMs) });
    if (res.status === 401) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) throw new Error(`the auth service answered ${res.status} to a session exchange`);
    const body = (await res.json()) as { token?: unknown };
    return typeof body.token === 'string' ? body.token : null;
  };
}
