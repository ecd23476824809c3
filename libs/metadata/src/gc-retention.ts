/** Queries of the garbage collector's retention rules: the repositories of a namespace and their tags by age. */
import type { SqlExecutor } from './database';

/** A tag with its age, as a retention rule sees it. */
export interface AgedTag {
  name: string;
  digest: string;
  updatedAt: Date;
  /** updated_at exactly as stored (microseconds), to delete the tag only if it is unchanged. */
  stamp: string;
}

/** Repositories in a namespace (`team` covers `team` and `team/...`; '' covers every repository), in name order. */
export async function repositoriesInNamespace(db: SqlExecutor, namespace: string): Promise<Array<{ id: number; name: string }>> {
  const r = await db.query<{ id: number; name: string }>(
    `SELECT id, name FROM repositories WHERE $1 = '' OR name = $1 OR starts_with(name, $1 || '/') ORDER BY name`,
    [namespace],
  );
  return r.rows;
}

/** A repository's tags, newest first (ties by name). */
export async function tagsByAge(db: SqlExecutor, repositoryId: number): Promise<AgedTag[]> {
  const r = await db.query<AgedTag>(
    `SELECT name, manifest_digest AS digest, updated_at AS "updatedAt", updated_at::text AS stamp FROM tags WHERE repository_id = $1 ORDER BY updated_at DESC, name`,
    [repositoryId],
  );
  return r.rows;
}

/**
 * Deletes a tag only if it still points where the rule saw it (same manifest, not updated since); resolves with
 * whether it did. A tag pushed again in between is left alone.
 */
export async function deleteTagIfUnchanged(tx: SqlExecutor, repositoryId: number, tag: AgedTag): Promise<boolean> {
  const r = await tx.query(`DELETE FROM tags WHERE repository_id = $1 AND name = $2 AND manifest_digest = $3 AND updated_at = $4::timestamptz`, [
    repositoryId,
    tag.name,
    tag.digest,
    tag.stamp,
  ]);
  return r.rowCount > 0;
}
