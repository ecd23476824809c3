/** Typed queries on blobs and their links to repositories. */
import type { SqlExecutor } from './database';

/** A blob as a repository sees it. */
export interface BlobRow {
  digest: string;
  size: number;
}

/** Finds a blob linked to a repository (by repository name). */
export async function findRepositoryBlob(db: SqlExecutor, repository: string, digest: string): Promise<BlobRow | null> {
  const r = await db.query<BlobRow>(
    `SELECT b.digest, b.size FROM repositories r
       JOIN repository_blobs rb ON rb.repository_id = r.id
       JOIN blobs b ON b.digest = rb.blob_digest
      WHERE r.name = $1 AND rb.blob_digest = $2`,
    [repository, digest],
  );
  return r.rows[0] ?? null;
}

/**
 * Locks a blob row for the rest of the transaction (shared), so that the garbage collector, which takes the row
 * exclusively, cannot delete it while a link to it is being made. Null when the blob does not exist.
 */
export async function lockBlob(tx: SqlExecutor, digest: string): Promise<BlobRow | null> {
  const r = await tx.query<BlobRow>(`SELECT digest, size FROM blobs WHERE digest = $1 FOR SHARE`, [digest]);
  return r.rows[0] ?? null;
}

/** Records a stored blob (no-op if it is already recorded); true when this call inserted the row. */
export async function insertBlob(tx: SqlExecutor, digest: string, size: number): Promise<boolean> {
  const r = await tx.query(`INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING`, [digest, size]);
  return r.rowCount > 0;
}

/** Links a blob to a repository; true when the link is new. */
export async function linkBlob(tx: SqlExecutor, repositoryId: number, digest: string): Promise<boolean> {
  const r = await tx.query(
    `INSERT INTO repository_blobs (repository_id, blob_digest) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
    [repositoryId, digest],
  );
  return r.rowCount > 0;
}

/** Removes a blob's link to a repository; true when there was one. */
export async function unlinkBlob(tx: SqlExecutor, repositoryId: number, digest: string): Promise<boolean> {
  const r = await tx.query(`DELETE FROM repository_blobs WHERE repository_id = $1 AND blob_digest = $2`, [repositoryId, digest]);
  return r.rowCount > 0;
}

/**
 * The digests among `digests` that are not linked to the repository. The blob rows are locked (`FOR SHARE`, as
 * lockBlob) and stay locked for the transaction, so that the garbage collector cannot delete a blob and its links
 * between this check and the references the caller is about to insert. One statement: a blob whose row it could not
 * lock (the collector deleted it while the statement waited for the row) counts as missing, whatever links the
 * statement's snapshot still shows, as a second statement after the lock would have found its links gone.
 */
export async function missingRepositoryBlobs(db: SqlExecutor, repositoryId: number, digests: string[]): Promise<string[]> {
  if (digests.length === 0) return [];
  // Joins rather than NOT IN / NOT EXISTS: so written, the prepared statement keeps a generic plan (planned once per
  // connection); the other forms are planned again on every push.
  const r = await db.query<{ digest: string }>(
    `WITH locked AS (SELECT digest FROM blobs WHERE digest = ANY($3::text[]) ORDER BY digest FOR SHARE)
     SELECT u.d AS digest FROM unnest($2::text[]) WITH ORDINALITY AS u(d, n)
       LEFT JOIN locked l ON l.digest = u.d
       LEFT JOIN repository_blobs rb ON rb.repository_id = $1 AND rb.blob_digest = u.d
      WHERE l.digest IS NULL OR rb.blob_digest IS NULL
      ORDER BY u.n`,
    [repositoryId, digests, [...new Set(digests)]],
  );
  return r.rows.map((row) => row.digest);
}

/**
 * Locks (`FOR SHARE`, as lockBlob) whichever of `digests` are recorded blobs, for the rest of the transaction; the
 * others are ignored. A manifest push locks its foreign layers this way: the registry need not hold them, but if it
 * does the garbage collector must not delete them under the manifest.
 */
export async function lockBlobsIfPresent(tx: SqlExecutor, digests: string[]): Promise<void> {
  if (digests.length === 0) return;
  await tx.query(`SELECT digest FROM blobs WHERE digest = ANY($1::text[]) FOR SHARE`, [digests]);
}

/** True when some repository links the blob (a mount without `from` may take it from there). */
export async function isBlobLinkedAnywhere(db: SqlExecutor, digest: string): Promise<boolean> {
  const r = await db.query(`SELECT 1 FROM repository_blobs WHERE blob_digest = $1 LIMIT 1`, [digest]);
  return r.rows.length > 0;
}
