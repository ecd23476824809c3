/**
 * The pull-through caches stored through the admin API (`proxy_rules`, migration 0009): read by every process's
 * live proxy rules, written by the admin API. The password is kept as the caller stored it (sealed by the at-rest
 * cipher when `secrets.key` is set); nothing here opens it.
 */
import type { SqlExecutor } from './database';

/** A stored proxy rule, its password as stored. */
export interface StoredProxyRule {
  namespace: string;
  upstream: string;
  username: string | null;
  /** The password as stored (sealed, or plain without `secrets.key`); null when the upstream is anonymous. */
  storedPassword: string | null;
  tagTtl: string;
  evictAfter: string | null;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  namespace: string;
  upstream: string;
  username: string | null;
  password: string | null;
  tag_ttl: string;
  evict_after: string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const iso = (v: Date | string) => (v instanceof Date ? v.toISOString() : new Date(v).toISOString());

function fromRow(row: Row): StoredProxyRule {
  return {
    namespace: row.namespace,
    upstream: row.upstream,
    username: row.username,
    storedPassword: row.password,
    tagTtl: row.tag_ttl,
    evictAfter: row.evict_after,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/** Every stored proxy rule, by namespace. */
export async function listStoredProxyRules(db: SqlExecutor): Promise<StoredProxyRule[]> {
  const r = await db.query<Row>(`SELECT namespace, upstream, username, password, tag_ttl, evict_after, created_at, updated_at FROM proxy_rules ORDER BY namespace`);
  return r.rows.map(fromRow);
}

/**
 * Locks the stored rules against other writers until the transaction ends (readers go on), so that two admins
 * adding `hub` and `hub/library` at once cannot both pass the nesting check.
 */
export async function lockStoredProxyRules(tx: SqlExecutor): Promise<void> {
  await tx.query(`LOCK TABLE proxy_rules IN SHARE ROW EXCLUSIVE MODE`);
}

/** What a rule is written as: the stored rule without its times. */
export type StoredProxyRuleInput = Omit<StoredProxyRule, 'createdAt' | 'updatedAt'>;

/** Creates or replaces the rule of a namespace; resolves with which it did and the rule as stored. */
export async function putStoredProxyRule(tx: SqlExecutor, rule: StoredProxyRuleInput): Promise<{ created: boolean; rule: StoredProxyRule }> {
  const r = await tx.query<Row & { inserted: boolean }>(
    `INSERT INTO proxy_rules (namespace, upstream, username, password, tag_ttl, evict_after)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (namespace) DO UPDATE SET upstream = excluded.upstream, username = excluded.username, password = excluded.password,
       tag_ttl = excluded.tag_ttl, evict_after = excluded.evict_after, updated_at = now()
     RETURNING namespace, upstream, username, password, tag_ttl, evict_after, created_at, updated_at, (xmax = 0) AS inserted`,
    [rule.namespace, rule.upstream, rule.username, rule.storedPassword, rule.tagTtl, rule.evictAfter],
  );
  const row = r.rows[0];
  return { created: row.inserted, rule: fromRow(row) };
}

/** Deletes the rule of a namespace; true when there was one. */
export async function deleteStoredProxyRule(tx: SqlExecutor, namespace: string): Promise<boolean> {
  return (await tx.query(`DELETE FROM proxy_rules WHERE namespace = $1`, [namespace])).rowCount > 0;
}

/** Replaces a stored password if it is still `from` (sealing at start-up, replicas racing); true when replaced. */
export async function replaceStoredProxyPassword(db: SqlExecutor, namespace: string, from: string, to: string): Promise<boolean> {
  return (await db.query(`UPDATE proxy_rules SET password = $3 WHERE namespace = $1 AND password = $2`, [namespace, from, to])).rowCount > 0;
}
