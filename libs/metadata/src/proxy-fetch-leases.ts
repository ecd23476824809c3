/**
 * Leases of the pull-through cache's upstream fetches (migration 0008): one row per key being fetched, held by one
 * fetch at a time, so that replicas missing the same content ask the upstream once. Times are the database's.
 */
import type { SqlExecutor } from './database';

/**
 * Takes the lease of `key` for `holder` for `ttlMs`: when nobody holds it, or its holder let it expire (a replica
 * that died mid-fetch is taken over). Resolves with whether `holder` now holds it.
 */
export async function takeFetchLease(db: SqlExecutor, key: string, holder: string, ttlMs: number): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO proxy_fetch_leases (key, holder, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3::double precision / 1000))
     ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
      WHERE proxy_fetch_leases.expires_at < now() OR proxy_fetch_leases.holder = EXCLUDED.holder
     RETURNING holder`,
    [key, holder, ttlMs],
  );
  return r.rows.length > 0;
}

/** Extends `holder`'s lease of `key` to `ttlMs` from now; false when it is no longer held by `holder` (taken over). */
export async function renewFetchLease(db: SqlExecutor, key: string, holder: string, ttlMs: number): Promise<boolean> {
  const r = await db.query(
    `UPDATE proxy_fetch_leases SET expires_at = now() + make_interval(secs => $3::double precision / 1000) WHERE key = $1 AND holder = $2`,
    [key, holder, ttlMs],
  );
  return r.rowCount > 0;
}

/** Ends `holder`'s lease of `key` (its fetch finished or failed); a lease taken over since is left to its new holder. */
export async function releaseFetchLease(db: SqlExecutor, key: string, holder: string): Promise<void> {
  await db.query(`DELETE FROM proxy_fetch_leases WHERE key = $1 AND holder = $2`, [key, holder]);
}
