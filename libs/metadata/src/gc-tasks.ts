/**
 * The garbage collector's side of the review queues: claiming due tasks (`FOR UPDATE SKIP LOCKED`, so any number
 * of collectors share the queues without waiting on each other), finishing, rescheduling and postponing them, and
 * the figures an operator watches. A claimed task stays locked until its transaction ends.
 */
import type { SqlExecutor } from './database';

/** A claimed blob review. */
export interface BlobReviewTask {
  digest: string;
  reason: string;
  reviewAfter: Date;
  attempts: number;
}

/** A claimed manifest review. */
export interface ManifestReviewTask {
  repositoryId: number;
  digest: string;
  reason: string;
  reviewAfter: Date;
  attempts: number;
}

/** Bounds every wait of a collector transaction: it never holds its locks long, nor waits long for another's. */
export async function setGcTimeouts(tx: SqlExecutor, lockTimeoutMs: number, statementTimeoutMs: number): Promise<void> {
  await tx.query(`SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`, [
    `${Math.max(1, Math.round(lockTimeoutMs))}ms`,
    `${Math.max(1, Math.round(statementTimeoutMs))}ms`,
  ]);
}

/** Claims the oldest due blob review that no other collector holds. */
export async function claimBlobReview(tx: SqlExecutor): Promise<BlobReviewTask | null> {
  const r = await tx.query<BlobReviewTask>(
    `SELECT digest, reason, review_after AS "reviewAfter", attempts FROM gc_blob_review_queue
      WHERE review_after <= now() ORDER BY review_after LIMIT 1 FOR UPDATE SKIP LOCKED`,
  );
  return r.rows[0] ?? null;
}

/** Claims the oldest due manifest review that no other collector holds. */
export async function claimManifestReview(tx: SqlExecutor): Promise<ManifestReviewTask | null> {
  const r = await tx.query<ManifestReviewTask>(
    `SELECT repository_id AS "repositoryId", digest, reason, review_after AS "reviewAfter", attempts FROM gc_manifest_review_queue
      WHERE review_after <= now() ORDER BY review_after LIMIT 1 FOR UPDATE SKIP LOCKED`,
  );
  return r.rows[0] ?? null;
}

/** Removes a blob review: the blob was deleted, is gone, or is kept until something queues it again. */
export async function finishBlobReview(tx: SqlExecutor, digest: string): Promise<void> {
  await tx.query(`DELETE FROM gc_blob_review_queue WHERE digest = $1`, [digest]);
}

/** Removes a manifest review. */
export async function finishManifestReview(tx: SqlExecutor, repositoryId: number, digest: string): Promise<void> {
  await tx.query(`DELETE FROM gc_manifest_review_queue WHERE repository_id = $1 AND digest = $2`, [repositoryId, digest]);
}

/**
 * Moves a blob review to `afterMs` from now; `busy` counts it as put off (the rows were locked), which grows the
 * next backoff, else the attempt counter starts again.
 */
export async function rescheduleBlobReview(tx: SqlExecutor, digest: string, afterMs: number, busy: boolean): Promise<void> {
  await tx.query(
    `UPDATE gc_blob_review_queue SET review_after = now() + make_interval(secs => $2::double precision / 1000),
            attempts = CASE WHEN $3 THEN attempts + 1 ELSE 0 END
      WHERE digest = $1`,
    [digest, Math.max(0, afterMs), busy],
  );
}

/** Moves a manifest review to `afterMs` from now (see rescheduleBlobReview). */
export async function rescheduleManifestReview(tx: SqlExecutor, repositoryId: number, digest: string, afterMs: number, busy: boolean): Promise<void> {
  await tx.query(
    `UPDATE gc_manifest_review_queue SET review_after = now() + make_interval(secs => $3::double precision / 1000),
            attempts = CASE WHEN $4 THEN attempts + 1 ELSE 0 END
      WHERE repository_id = $1 AND digest = $2`,
    [repositoryId, digest, Math.max(0, afterMs), busy],
  );
}

/**
 * Milliseconds until the next review or object deletion falls due (0 when one is due now, null when none waits).
 * Clamped here, not with SQL's GREATEST, which skips NULLs: `GREATEST(0, NULL)` is 0, and an idle collector read
 * "due now" and polled every 50–100 ms (docs/benchmarks.md, memory of the embedded process at rest).
 */
export async function msUntilNextGcTask(db: SqlExecutor): Promise<number | null> {
  const r = await db.query<{ ms: number | null }>(
    `SELECT (EXTRACT(EPOCH FROM (LEAST(
              (SELECT min(review_after) FROM gc_blob_review_queue),
              (SELECT min(review_after) FROM gc_manifest_review_queue),
              (SELECT min(retry_after) FROM gc_tombstones)) - now())) * 1000)::float8 AS ms`,
  );
  const ms = r.rows[0]?.ms;
  return ms === null || ms === undefined ? null : Math.max(0, Number(ms));
}

/** The queues as an operator sees them. */
export interface GcQueueStats {
  blobReviews: { size: number; due: number; overdue: number };
  manifestReviews: { size: number; due: number; overdue: number };
  tombstones: { blob: number; upload: number; failing: number };
  pins: number;
}

/** Counts queued, due and overdue (due for longer than `overdueMs`) tasks, pending object deletions and pins. */
export async function gcQueueStats(db: SqlExecutor, overdueMs: number): Promise<GcQueueStats> {
  const r = await db.query<Record<string, number>>(
    `SELECT
       (SELECT count(*) FROM gc_blob_review_queue)::int AS b_size,
       (SELECT count(*) FROM gc_blob_review_queue WHERE review_after <= now())::int AS b_due,
       (SELECT count(*) FROM gc_blob_review_queue WHERE review_after <= now() - make_interval(secs => $1::double precision / 1000))::int AS b_overdue,
       (SELECT count(*) FROM gc_manifest_review_queue)::int AS m_size,
       (SELECT count(*) FROM gc_manifest_review_queue WHERE review_after <= now())::int AS m_due,
       (SELECT count(*) FROM gc_manifest_review_queue WHERE review_after <= now() - make_interval(secs => $1::double precision / 1000))::int AS m_overdue,
       (SELECT count(*) FROM gc_tombstones WHERE kind = 'blob')::int AS t_blob,
       (SELECT count(*) FROM gc_tombstones WHERE kind = 'upload')::int AS t_upload,
       (SELECT count(*) FROM gc_tombstones WHERE attempts > 0)::int AS t_failing,
       (SELECT count(*) FROM gc_blob_pins)::int AS pins`,
    [overdueMs],
  );
  const row = r.rows[0];
  return {
    blobReviews: { size: row.b_size, due: row.b_due, overdue: row.b_overdue },
    manifestReviews: { size: row.m_size, due: row.m_due, overdue: row.m_overdue },
    tombstones: { blob: row.t_blob, upload: row.t_upload, failing: row.t_failing },
    pins: row.pins,
  };
}

/** A queued review, as the dry run lists it. */
export interface QueuedReview {
  repositoryId: number | null;
  digest: string;
  reason: string;
  reviewAfter: Date;
}

/** Lists blob reviews (due ones only unless `includeNotDue`), oldest first, at most `limit`. */
export async function listBlobReviews(db: SqlExecutor, includeNotDue: boolean, limit: number): Promise<QueuedReview[]> {
  const r = await db.query<QueuedReview>(
    `SELECT NULL::bigint AS "repositoryId", digest, reason, review_after AS "reviewAfter" FROM gc_blob_review_queue
      WHERE $1 OR review_after <= now() ORDER BY review_after LIMIT $2`,
    [includeNotDue, limit],
  );
  return r.rows;
}

/** Lists manifest reviews (due ones only unless `includeNotDue`), oldest first, at most `limit`. */
export async function listManifestReviews(db: SqlExecutor, includeNotDue: boolean, limit: number): Promise<QueuedReview[]> {
  const r = await db.query<QueuedReview>(
    `SELECT repository_id AS "repositoryId", digest, reason, review_after AS "reviewAfter" FROM gc_manifest_review_queue
      WHERE $1 OR review_after <= now() ORDER BY review_after LIMIT $2`,
    [includeNotDue, limit],
  );
  return r.rows;
}
