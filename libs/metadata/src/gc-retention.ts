/** Queries of the garbage collector's retention rules: the repositories of a namespace and their tags by age. */
import type { SqlExecutor } from './database';
import { listedRepository } from './repository-deletions';

/** A tag with its age, as a retention rule sees it. */
export interface AgedTag {
  name: string;
  digest: string;
  updatedAt: Date;
  /** updated_at exactly as stored (microseconds), to delete the tag only if it is unchanged. */
  stamp: string;
  /** When its manifest was last pulled (batched: `recordManifestPulls`), null if never since pulls were recorded. */
  lastPulledAt: Date | null;
}

/** Repositories in a namespace (`team` covers `team` and `team/...`; '' covers every repository), in name order. */
export async function repositoriesInNamespace(db: SqlExecutor, namespace: string): Promise<Array<{ id: number; name: string }>> {
  const r = await db.query<{ id: number; name: string }>(
    `SELECT id, name FROM repositories WHERE ($1 = '' OR name = $1 OR starts_with(name, $1 || '/')) AND ${listedRepository('name')} ORDER BY name`,
    [namespace],
  );
  return r.rows;
}

/** A repository's tags, newest first (ties by name). */
export async function tagsByAge(db: SqlExecutor, repositoryId: number): Promise<AgedTag[]> {
  const r = await db.query<AgedTag>(
    `SELECT t.name, t.manifest_digest AS digest, t.updated_at AS "updatedAt", t.updated_at::text AS stamp, m.last_pulled_at AS "lastPulledAt"
       FROM tags t JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
      WHERE t.repository_id = $1 ORDER BY t.updated_at DESC, t.name`,
    [repositoryId],
  );
  return r.rows;
}

/**
 * Deletes a tag only if it still points where the rule saw it (same manifest, not updated since) and, when
 * `notPulledSince` is given (epoch milliseconds), its manifest has not been pulled since then; resolves with whether
 * it did. A tag pushed again in between, or whose image a recorded pull used meanwhile, is left alone.
 */
export async function deleteTagIfUnchanged(tx: SqlExecutor, repositoryId: number, tag: AgedTag, notPulledSince: number | null = null): Promise<boolean> {
  const r = await tx.query(
    `DELETE FROM tags t WHERE t.repository_id = $1 AND t.name = $2 AND t.manifest_digest = $3 AND t.updated_at = $4::timestamptz
        AND ($5::float8 IS NULL OR NOT EXISTS (
              SELECT 1 FROM manifests m WHERE m.repository_id = t.repository_id AND m.digest = t.manifest_digest
                 AND m.last_pulled_at >= to_timestamp($5::float8 / 1000.0)))`,
    [repositoryId, tag.name, tag.digest, tag.stamp, notPulledSince],
  );
  return r.rowCount > 0;
}

/** An untagged manifest not pulled since a cutoff, as retention by pulls lists it. */
export interface UnpulledManifest {
  repositoryId: number;
  repository: string;
  digest: string;
  /** Its last recorded pull, or null when never pulled (it then counts from `createdAt`). */
  lastPulledAt: Date | null;
  createdAt: Date;
}

/**
 * Untagged manifests of a namespace (`team` covers `team` and `team/...`; '' every repository) last pulled before
 * `cutoff` (epoch milliseconds), or never pulled and pushed before it, at most `limit`, oldest first. Children of an
 * index are left out: they go with their index.
 */
export async function untaggedManifestsNotPulledSince(db: SqlExecutor, namespace: string, cutoff: number, limit: number): Promise<UnpulledManifest[]> {
  const r = await db.query<UnpulledManifest>(
    `SELECT r.id AS "repositoryId", r.name AS repository, m.digest, m.last_pulled_at AS "lastPulledAt", m.created_at AS "createdAt"
       FROM manifests m JOIN repositories r ON r.id = m.repository_id
      WHERE ($1 = '' OR r.name = $1 OR starts_with(r.name, $1 || '/')) AND ${listedRepository('r.name')}
        AND COALESCE(m.last_pulled_at, m.created_at) < to_timestamp($2::float8 / 1000.0)
        AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)
        AND NOT EXISTS (SELECT 1 FROM manifest_children c WHERE c.repository_id = m.repository_id AND c.child_digest = m.digest)
      ORDER BY COALESCE(m.last_pulled_at, m.created_at), r.id, m.digest
      LIMIT $3`,
    [namespace, cutoff, limit],
  );
  return r.rows.map((row) => ({ ...row, repositoryId: Number(row.repositoryId) }));
}
