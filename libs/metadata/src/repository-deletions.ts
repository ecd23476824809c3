/**
 * Deleting a repository in bounded batches, as a job that survives restarts (migration 0019).
 *
 * - **Detach** (`detachRepositoryForDeletion`, in the caller's transaction, after `lockRepositoryForDeletion`): the
 *   repository's upload sessions end (their stored data gets a tombstone), its queued manifest reviews go, its row is
 *   renamed to `~deleting/<id>` and a job row records it. The rename is what makes the deletion visible at once: no
 *   request can name a repository outside the grammar, every lookup by name misses it, and the listings (catalog,
 *   searches, console, retention) leave tombstones out (`listedRepository`). A push of the same name after the
 *   detach creates a new repository (a new id), which the batches never touch.
 * - **Batches** (`continueRepositoryDeletion`, each its own transaction, holding the job row `FOR UPDATE`, others
 *   skip it): up to `batchSize` manifests go (tags, blob references, index children and search metadata cascade),
 *   and the blobs they referenced that no remaining manifest of the repository references are unlinked and queued for
 *   the collector's review; once no manifest is left, the remaining blob links go the same way; then the repository
 *   row goes, and the job row with it. Each blob is counted and queued once, when the repository's last hold on it
 *   goes. A batch that fails rolls back whole, and the next one starts where the last commit left.
 *
 * Invariant: a manifest is never deleted without its blobs being queued for review in the same transaction, so a
 * crash between batches leaves no blob that nothing will ever review.
 */
import type { Database, SqlExecutor } from './database';
import { queueBlobReview } from './gc-queue';

/** The first characters of a tombstone's name: outside the repository grammar, and sorted after every valid name. */
export const DELETING_REPOSITORY_PREFIX = '~deleting/';

/** A SQL condition true for a repository name that listings show (not a tombstone of a deletion in progress). */
export function listedRepository(column: string): string {
  return `NOT starts_with(${column}, '~')`;
}

/** A repository deletion in progress, or finished, as its job row records it. */
export interface RepositoryDeletionProgress {
  repositoryId: number;
  /** The name the repository had. */
  repository: string;
  /** What it held when the deletion was asked for. */
  tags: number;
  manifests: number;
  uploads: number;
  /** What the batches did so far. */
  manifestsDeleted: number;
  blobsQueued: number;
  batches: number;
  /** True once the repository row is gone (the last batch ran). */
  finished: boolean;
}

/**
 * Takes a locked repository out of sight and records its deletion job, in the caller's transaction (see the top of
 * this file). Resolves with the ids of the upload sessions it ended.
 */
export async function detachRepositoryForDeletion(
  tx: SqlExecutor,
  repository: { id: number; name: string; tags: number; manifests: number },
): Promise<string[]> {
  const uploads = await tx.query<{ id: string }>(`DELETE FROM uploads WHERE repository_id = $1 RETURNING id::text AS id`, [repository.id]);
  const ids = uploads.rows.map((u) => u.id);
  if (ids.length > 0) {
    await tx.query(
      `INSERT INTO gc_tombstones (key, kind, target) SELECT 'upload:' || id, 'upload', id FROM unnest($1::text[]) AS id ON CONFLICT (key) DO NOTHING`,
      [ids],
    );
  }
  // A review of one of its manifests would delete it under the tombstone's name; the batches delete them all anyway.
  await tx.query(`DELETE FROM gc_manifest_review_queue WHERE repository_id = $1`, [repository.id]);
  await tx.query(`UPDATE repositories SET name = $2 || id::text WHERE id = $1`, [repository.id, DELETING_REPOSITORY_PREFIX]);
  // Its search document (0018) follows the rename, or a search would still find it by its old name. (Not a trigger
  // on the rename: every event's sequence number updates the row too, and would rewrite the document each time.)
  await tx.query(`SELECT refresh_search_documents(ARRAY[$1::bigint])`, [repository.id]);
  await tx.query(`INSERT INTO repository_deletions (repository_id, name, tags, manifests, uploads) VALUES ($1, $2, $3, $4, $5)`, [
    repository.id,
    repository.name,
    repository.tags,
    repository.manifests,
    ids.length,
  ]);
  return ids;
}

interface JobRow {
  repositoryId: string | number;
  repository: string;
  tags: string | number;
  manifests: string | number;
  uploads: string | number;
  manifestsDeleted: string | number;
  blobsQueued: string | number;
  batches: string | number;
}

const JOB_COLUMNS = `repository_id AS "repositoryId", name AS repository, tags, manifests, uploads,
  manifests_deleted AS "manifestsDeleted", blobs_queued AS "blobsQueued", batches`;

function progressOf(row: JobRow, finished: boolean): RepositoryDeletionProgress {
  return {
    repositoryId: Number(row.repositoryId),
    repository: row.repository,
    tags: Number(row.tags),
    manifests: Number(row.manifests),
    uploads: Number(row.uploads),
    manifestsDeleted: Number(row.manifestsDeleted),
    blobsQueued: Number(row.blobsQueued),
    batches: Number(row.batches),
    finished,
  };
}

/** How a batch runs. */
export interface RepositoryDeletionBatch {
  /** The job to continue; the oldest one nobody holds when omitted. */
  repositoryId?: number;
  /** At most this many manifests (or, once they are gone, blob links) per transaction. */
  batchSize: number;
  /** The review delay of the blobs it frees (`gc.reviewDelay`). */
  reviewDelayMs: number;
}

/** Deletes one batch of a locked job's repository; resolves with what it deleted, and whether nothing was left. */
async function deleteBatch(tx: SqlExecutor, repositoryId: number, batchSize: number, reviewDelayMs: number): Promise<{ manifests: number; blobs: number; emptied: boolean }> {
  const manifests = await tx.query<{ digest: string }>(`SELECT digest FROM manifests WHERE repository_id = $1 ORDER BY digest LIMIT $2`, [repositoryId, batchSize]);
  let freed: string[];
  if (manifests.rows.length > 0) {
    const digests = manifests.rows.map((m) => m.digest);
    const referenced = await tx.query<{ d: string }>(
      `SELECT DISTINCT blob_digest AS d FROM manifest_blob_references WHERE repository_id = $1 AND manifest_digest = ANY($2::text[])`,
      [repositoryId, digests],
    );
    await tx.query(`DELETE FROM manifests WHERE repository_id = $1 AND digest = ANY($2::text[])`, [repositoryId, digests]);
    // What the repository no longer holds through any manifest: unlinked and queued now, so counted once.
    const released = await tx.query<{ d: string }>(
      `SELECT d FROM unnest($2::text[]) AS d
        WHERE NOT EXISTS (SELECT 1 FROM manifest_blob_references r WHERE r.repository_id = $1 AND r.blob_digest = d)`,
      [repositoryId, referenced.rows.map((r) => r.d)],
    );
    freed = released.rows.map((r) => r.d);
    await tx.query(`DELETE FROM repository_blobs WHERE repository_id = $1 AND blob_digest = ANY($2::text[])`, [repositoryId, freed]);
  } else {
    const links = await tx.query<{ d: string }>(
      `DELETE FROM repository_blobs WHERE repository_id = $1
          AND blob_digest IN (SELECT blob_digest FROM repository_blobs WHERE repository_id = $1 ORDER BY blob_digest LIMIT $2)
        RETURNING blob_digest AS d`,
      [repositoryId, batchSize],
    );
    freed = links.rows.map((r) => r.d);
  }
  await queueBlobReview(tx, freed, 'repository deleted', reviewDelayMs);
  return { manifests: manifests.rows.length, blobs: freed.length, emptied: manifests.rows.length === 0 && freed.length === 0 };
}

/**
 * Runs one batch of a repository deletion job (the given one, or the oldest nobody holds) in its own transaction.
 * Resolves with the job's progress after it, `finished` when the repository row is gone; null when there is no such
 * job or another process holds it.
 */
export async function continueRepositoryDeletion(db: Pick<Database, 'transaction'>, batch: RepositoryDeletionBatch): Promise<RepositoryDeletionProgress | null> {
  return db.transaction(async (tx) => {
    const job = (
      await tx.query<JobRow>(
        batch.repositoryId === undefined
          ? `SELECT ${JOB_COLUMNS} FROM repository_deletions ORDER BY requested_at LIMIT 1 FOR UPDATE SKIP LOCKED`
          : `SELECT ${JOB_COLUMNS} FROM repository_deletions WHERE repository_id = $1 FOR UPDATE SKIP LOCKED`,
        batch.repositoryId === undefined ? [] : [batch.repositoryId],
      )
    ).rows[0];
    if (!job) return null;
    const repositoryId = Number(job.repositoryId);
    const done = await deleteBatch(tx, repositoryId, batch.batchSize, batch.reviewDelayMs);
    const progress = progressOf(job, done.emptied);
    progress.manifestsDeleted += done.manifests;
    progress.blobsQueued += done.blobs;
    progress.batches += 1;
    if (done.emptied) {
      await tx.query(`DELETE FROM repositories WHERE id = $1`, [repositoryId]);
    } else {
      await tx.query(
        `UPDATE repository_deletions SET manifests_deleted = $2, blobs_queued = $3, batches = $4 WHERE repository_id = $1`,
        [repositoryId, progress.manifestsDeleted, progress.blobsQueued, progress.batches],
      );
    }
    return progress;
  });
}

/** The repository deletions in progress, oldest first. */
export async function listRepositoryDeletions(db: SqlExecutor): Promise<RepositoryDeletionProgress[]> {
  const r = await db.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM repository_deletions ORDER BY requested_at`);
  return r.rows.map((row) => progressOf(row, false));
}
