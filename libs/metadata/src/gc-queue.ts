/**
 * The garbage collector's review queues, written in the same transaction as every unlink. Queuing is an upsert
 * that postpones an existing review, so content touched again is looked at only after it has been quiet.
 */
import type { SqlExecutor } from './database';

/** Queues blobs for review after `delayMs`. */
export async function queueBlobReview(tx: SqlExecutor, digests: string[], reason: string, delayMs: number): Promise<void> {
  if (digests.length === 0) return;
  await tx.query(
    `INSERT INTO gc_blob_review_queue (digest, review_after, reason)
     SELECT d, now() + make_interval(secs => $2::double precision / 1000), $3 FROM unnest($1::text[]) AS d
     ON CONFLICT (digest) DO UPDATE SET review_after = EXCLUDED.review_after, reason = EXCLUDED.reason`,
    [[...new Set(digests)], delayMs, reason],
  );
}

/** Queues manifests of a repository for review after `delayMs`. */
export async function queueManifestReview(tx: SqlExecutor, repositoryId: number, digests: string[], reason: string, delayMs: number): Promise<void> {
  if (digests.length === 0) return;
  await tx.query(
    `INSERT INTO gc_manifest_review_queue (repository_id, digest, review_after, reason)
     SELECT $1, d, now() + make_interval(secs => $3::double precision / 1000), $4 FROM unnest($2::text[]) AS d
     ON CONFLICT (repository_id, digest) DO UPDATE SET review_after = EXCLUDED.review_after, reason = EXCLUDED.reason`,
    [repositoryId, [...new Set(digests)], delayMs, reason],
  );
}
