/** Typed queries on repositories. */
import type { SqlExecutor } from './database';

/** A repository row. */
export interface RepositoryRow {
  id: number;
  name: string;
}

/** Finds a repository by name. */
export async function findRepository(db: SqlExecutor, name: string): Promise<RepositoryRow | null> {
  const r = await db.query<RepositoryRow>(`SELECT id, name FROM repositories WHERE name = $1`, [name]);
  return r.rows[0] ?? null;
}

/**
 * Returns the repository, creating it if needed; `created` says whether this call created it. Looks it up first:
 * almost every call finds it, in one statement.
 */
export async function ensureRepository(tx: SqlExecutor, name: string): Promise<RepositoryRow & { created: boolean }> {
  const found = await findRepository(tx, name);
  if (found) return { ...found, created: false };
  const inserted = await tx.query<RepositoryRow>(
    `INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id, name`,
    [name],
  );
  if (inserted.rows[0]) return { ...inserted.rows[0], created: true };
  const existing = await findRepository(tx, name);
  if (!existing) throw new Error(`repository ${name} vanished while being created`);
  return { ...existing, created: false };
}

/** Lists repository names in byte order after `last`, at most `limit` of them. */
export async function listRepositories(db: SqlExecutor, last: string | null, limit: number): Promise<string[]> {
  const r = await db.query<{ name: string }>(
    `SELECT name FROM repositories WHERE ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2`,
    [last, limit],
  );
  return r.rows.map((row) => row.name);
}
