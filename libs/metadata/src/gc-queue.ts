/**
 * The garbage collector's review queues, written in the same transaction as every unlink. Queuing is an upsert
 * that postpones an existing review (never brings it forward), so content touched again is looked at only after
 * it has been quiet. Each delay gets up to `REVIEW_JITTER` more at random, so that a mass unlink (a namespace
 * purge, a retention run) does not fall due in one instant.
 */
import type { SqlExecutor } from './database';

/** The largest random extra added to a review delay, as a fraction of it. */
export const REVIEW_JITTER = 0.1;

/** Queues blobs for review after `delayMs` (plus jitter). */
export async function queueBlobReview(tx: SqlExecutor, digests: string[], reason: string, delayMs: number): Promise<void> {
  if (digests.length === 0) return;
  await tx.query(
    `INSERT INTO gc_blob_review_queue (digest, review_after, reason)
     SELECT d, now() + make_interval(secs => $2::double precision * (1 + random() * $4) / 1000), $3 FROM unnest($1::text[]) AS d
     ON CONFLICT (digest) DO UPDATE
       SET review_after = GREATEST(gc_blob_review_queue.review_after, EXCLUDED.review_after), reason = EXCLUDED.reason, attempts = 0`,
    [[...new Set(digests)].sort(), delayMs, reason, REVIEW_JITTER],
  );
}

/** Queues manifests of a repository for review after `delayMs` (plus jitter). */
export async function queueManifestReview(tx: SqlExecutor, repositoryId: number, digests: string[], reason: string, delayMs: number): Promise<void> {
  if (digests.length === 0) return;
  await tx.query(
    `INSERT INTO gc_manifest_review_queue (repository_id, digest, review_after, reason)
     SELECT $1, d, now() + make_interval(secs => $3::double precision * (1 + random() * $5) / 1000), $4 FROM unnest($2::text[]) AS d
     ON CONFLICT (repository_id, digest) DO UPDATE
       SET review_after = GREATEST(gc_manifest_review_queue.review_after, EXCLUDED.review_after), reason = EXCLUDED.reason, attempts = 0`,
    [repositoryId, [...new Set(digests)].sort(), delayMs, reason, REVIEW_JITTER],
  );
}
