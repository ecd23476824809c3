/** Queries of manifest pulls: the batched last-pulled times, and the proxy content stale by them. */
import type { SqlExecutor } from './database';

/** A pull to record: a manifest of a repository, served at `at` (epoch milliseconds). */
export interface ManifestPull {
  repository: string;
  digest: string;
  at: number;
}

/**
 * Records a batch of pulls in one statement: each manifest's `last_pulled_at` moves forward to its pull's time
 * (never back, so a late batch cannot undo a newer one); pulls of manifests since deleted are ignored. Resolves
 * with the number of manifest rows updated.
 */
export async function recordManifestPulls(db: SqlExecutor, pulls: readonly ManifestPull[]): Promise<number> {
  if (pulls.length === 0) return 0;
  const r = await db.query(RECORD_PULLS, [pulls.map((p) => p.repository), pulls.map((p) => p.digest), pulls.map((p) => p.at)]);
  return r.rowCount;
}
const RECORD_PULLS = `UPDATE manifests m SET last_pulled_at = GREATEST(m.last_pulled_at, p.at)
  FROM (SELECT r.id AS repository_id, u.digest, to_timestamp(u.ms / 1000.0) AS at
          FROM unnest($1::text[], $2::text[], $3::float8[]) AS u (repository, digest, ms)
          JOIN repositories r ON r.name = u.repository
         ORDER BY r.id, u.digest) p
 WHERE m.repository_id = p.repository_id AND m.digest = p.digest`;

/** A manifest of a proxy namespace not pulled (nor fetched) since a cutoff. */
export interface StaleManifest {
  repositoryId: number;
  repository: string;
  digest: string;
}

/**
 * Manifests of a namespace (`hub` covers `hub` and `hub/...`) last pulled before `cutoff` (epoch milliseconds), or
 * never pulled and stored before it, at most `limit`, oldest first. Children of an index are left out: they go
 * with their index (the collector reviews them when it is deleted); an index with a child pulled since the cutoff
 * (a platform pulled by digest) is not stale.
 */
export async function staleManifests(db: SqlExecutor, namespace: string, cutoff: number, limit: number): Promise<StaleManifest[]> {
  const r = await db.query<StaleManifest>(
    `SELECT r.id AS "repositoryId", r.name AS repository, m.digest
       FROM manifests m JOIN repositories r ON r.id = m.repository_id
      WHERE (r.name = $1 OR starts_with(r.name, $1 || '/'))
        AND COALESCE(m.last_pulled_at, m.created_at) < to_timestamp($2::float8 / 1000.0)
        AND NOT EXISTS (SELECT 1 FROM manifest_children c WHERE c.repository_id = m.repository_id AND c.child_digest = m.digest)
        AND NOT EXISTS (SELECT 1 FROM manifest_children c JOIN manifests k ON k.repository_id = c.repository_id AND k.digest = c.child_digest
                         WHERE c.repository_id = m.repository_id AND c.parent_digest = m.digest
                           AND COALESCE(k.last_pulled_at, k.created_at) >= to_timestamp($2::float8 / 1000.0))
      ORDER BY COALESCE(m.last_pulled_at, m.created_at), r.id, m.digest
      LIMIT $3`,
    [namespace, cutoff, limit],
  );
  return r.rows.map((row) => ({ ...row, repositoryId: Number(row.repositoryId) }));
}

/**
 * Whether a manifest is still stale (last pulled, or stored, before `cutoff`), locking it `FOR UPDATE` for the
 * deletion that follows when it is: a pull recorded since the candidates were listed saves it.
 */
export async function lockIfStale(tx: SqlExecutor, repositoryId: number, digest: string, cutoff: number): Promise<boolean> {
  const r = await tx.query(
    `SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2 AND COALESCE(last_pulled_at, created_at) < to_timestamp($3::float8 / 1000.0) FOR UPDATE`,
    [repositoryId, digest, cutoff],
  );
  return r.rows.length > 0;
}
