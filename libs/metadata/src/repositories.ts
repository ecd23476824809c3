/** Typed queries on repositories. */
import type { SqlExecutor } from './database';
import { listedRepository } from './repository-deletions';

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
 *
 * A found row stays locked `FOR KEY SHARE` for the caller's transaction (the lock its rows' foreign keys take anyway
 * when they are written), so a repository deletion (`lockRepositoryForDeletion`, `FOR UPDATE`) cannot commit between
 * this lookup and the write that follows: it waits for the write, or the write waits for it and then creates the
 * repository afresh.
 */
export async function ensureRepository(tx: SqlExecutor, name: string): Promise<RepositoryRow & { created: boolean }> {
  const found = (await tx.query<RepositoryRow>(`SELECT id, name FROM repositories WHERE name = $1 FOR KEY SHARE`, [name])).rows[0];
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
    `SELECT name FROM repositories WHERE ($1::text IS NULL OR name > $1) AND ${listedRepository('name')} ORDER BY name LIMIT $2`,
    [last, limit],
  );
  return r.rows.map((row) => row.name);
}

/** What a repository holds, as its deletion sees it: the caller checks `tags` against the immutable-tag rules. */
export interface RepositoryContents {
  id: number;
  name: string;
  /** Its tags, in byte order. */
  tags: string[];
  manifests: number;
}

/**
 * Locks a repository for its deletion and reads what it holds; null when there is no such repository. The row is
 * locked `FOR UPDATE`: every write to the repository (a push, an upload, a mount, a tag change) holds it in a weaker
 * mode for its transaction, so this waits for the writes in flight, and a write after the deletion commits finds
 * no repository (and creates a new one). The deletion itself is repository-deletions.ts.
 */
export async function lockRepositoryForDeletion(tx: SqlExecutor, name: string): Promise<RepositoryContents | null> {
  const repo = await tx.query<RepositoryRow>(`SELECT id, name FROM repositories WHERE name = $1 FOR UPDATE`, [name]);
  const row = repo.rows[0];
  if (!row) return null;
  const tags = await tx.query<{ name: string }>(`SELECT name FROM tags WHERE repository_id = $1 ORDER BY name`, [row.id]);
  const manifests = await tx.query<{ n: string }>(`SELECT count(*)::text AS n FROM manifests WHERE repository_id = $1`, [row.id]);
  return { id: row.id, name: row.name, tags: tags.rows.map((t) => t.name), manifests: Number(manifests.rows[0]?.n ?? 0) };
}
