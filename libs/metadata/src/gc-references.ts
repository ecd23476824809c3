/**
 * What the garbage collector reads and deletes: candidate rows locked the way a concurrent push would conflict
 * with (exclusively and `NOWAIT`: a row a push holds is put off, never waited for), every kind of reference to
 * them, and the deletes themselves.
 *
 * The pushes' side of the same locks: an upload or mount holds its blob row `FOR SHARE` while linking it
 * (blobs.ts lockBlob); a manifest push holds the blob rows it references `FOR SHARE` and the child manifests and
 * the manifest it re-pushes `FOR KEY SHARE`; creating a tag holds its manifest `FOR KEY SHARE` (the foreign key).
 * Each of those conflicts with the collector's `FOR UPDATE`, so the push either commits its reference first (and
 * the collector sees it and keeps the row) or waits until the collector commits (and then finds the row gone).
 *
 * A manifest's blob references may name blobs not stored: a pull-through cache stores a manifest before fetching
 * its layers (0011_lazy_references.sql). Such a reference keeps nothing alive until the blob is fetched, and then
 * keeps it as any reference does; nothing here reads a reference as "the blob exists".
 */
import type { SqlExecutor } from './database';
import { listedRepository } from './repository-deletions';

/** A blob row as the collector sees it. */
export interface GcBlobRow {
  digest: string;
  size: number;
  createdAt: Date;
}

/** A repository's link to a blob. */
export interface GcBlobLink {
  repositoryId: number;
  repository: string;
  createdAt: Date;
  /** True while the link is younger than the grace window (an upload waiting for its manifest). */
  young: boolean;
}

/** A manifest that references something. */
export interface GcReferrer {
  repositoryId: number;
  repository: string;
  digest: string;
}

/** A manifest row as the collector sees it. */
export interface GcManifestRow {
  repositoryId: number;
  repository: string;
  digest: string;
  mediaType: string;
  size: number;
  payload: Buffer;
  subjectDigest: string | null;
  createdAt: Date;
  /** Its last recorded pull (retention by pulls), null if never. */
  lastPulledAt: Date | null;
}

const lockClause = (lock: boolean, of?: string) => (lock ? ` FOR UPDATE${of ? ` OF ${of}` : ''} NOWAIT` : '');

/** Reads a blob row, locking it exclusively (NOWAIT) when `lock`; null when there is none. */
export async function readBlobForCollection(tx: SqlExecutor, digest: string, lock: boolean): Promise<GcBlobRow | null> {
  const r = await tx.query<GcBlobRow>(`SELECT digest, size, created_at AS "createdAt" FROM blobs WHERE digest = $1${lockClause(lock)}`, [digest]);
  return r.rows[0] ?? null;
}

/** Up to `limit` manifests that reference a blob (config or layer). */
export async function manifestsReferencingBlob(tx: SqlExecutor, digest: string, limit: number): Promise<GcReferrer[]> {
  const r = await tx.query<GcReferrer>(
    `SELECT mbr.repository_id AS "repositoryId", r.name AS repository, mbr.manifest_digest AS digest
       FROM manifest_blob_references mbr JOIN repositories r ON r.id = mbr.repository_id
      WHERE mbr.blob_digest = $1 LIMIT $2`,
    [digest, limit],
  );
  return r.rows;
}

/** A blob's links to repositories, locked (NOWAIT) when `lock`; `young` when newer than `graceMs`. */
export async function blobLinks(tx: SqlExecutor, digest: string, graceMs: number, lock: boolean): Promise<GcBlobLink[]> {
  const r = await tx.query<GcBlobLink>(
    `SELECT rb.repository_id AS "repositoryId", r.name AS repository, rb.created_at AS "createdAt",
            rb.created_at > now() - make_interval(secs => $2::double precision / 1000) AS young
       FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
      WHERE rb.blob_digest = $1 ORDER BY rb.repository_id${lockClause(lock, 'rb')}`,
    [digest, graceMs],
  );
  return r.rows;
}

/**
 * Locks repository rows the way appending an event does (`FOR NO KEY UPDATE`), in id order. Unlike the candidate
 * rows this waits, but only for the transaction's lock timeout (far below Postgres's deadlock timeout): every push
 * holds its repository for its whole transaction, and failing at once would put reviews of busy repositories off
 * again and again. No push waits for the collector while holding a repository the collector is about to wait
 * for: the rows a push could want from it (the candidate, its review task) it takes before its repository, or
 * it finds them still referenced and the collector keeps them without taking the repository.
 *
 * Resolves with the ids among them that are still repositories in sight: a repository a deletion took out of sight
 * (repository-deletions.ts) is the deletion's batches' to empty, and no event can name it, so callers leave it alone.
 */
export async function lockRepositoriesForEvents(tx: SqlExecutor, repositoryIds: number[]): Promise<Set<number>> {
  if (repositoryIds.length === 0) return new Set();
  const r = await tx.query<{ id: string | number }>(
    `SELECT id FROM repositories WHERE id = ANY($1::bigint[]) AND ${listedRepository('name')} ORDER BY id FOR NO KEY UPDATE`,
    [[...new Set(repositoryIds)]],
  );
  return new Set(r.rows.map((row) => Number(row.id)));
}

/**
 * Deletes a blob's metadata: its links, its row, and writes its tombstone (the object is deleted after commit).
 * The caller holds the blob row and has re-checked that nothing references it.
 */
export async function deleteBlobMetadata(tx: SqlExecutor, digest: string, size: number): Promise<void> {
  await tx.query(`DELETE FROM repository_blobs WHERE blob_digest = $1`, [digest]);
  await tx.query(`DELETE FROM blobs WHERE digest = $1`, [digest]);
  await tx.query(
    `INSERT INTO gc_tombstones (key, kind, target, size) VALUES ('blob:' || $1, 'blob', $1, $2)
     ON CONFLICT (key) DO UPDATE SET size = EXCLUDED.size, created_at = now(), retry_after = now(), attempts = 0, last_error = NULL`,
    [digest, size],
  );
}

/** Reads a manifest row with its repository's name, locking it exclusively (NOWAIT) when `lock`. */
export async function readManifestForCollection(tx: SqlExecutor, repositoryId: number, digest: string, lock: boolean): Promise<GcManifestRow | null> {
  const r = await tx.query<GcManifestRow>(
    `SELECT m.repository_id AS "repositoryId", r.name AS repository, m.digest, m.media_type AS "mediaType", m.size, m.payload,
            m.subject_digest AS "subjectDigest", m.created_at AS "createdAt", m.last_pulled_at AS "lastPulledAt"
       FROM manifests m JOIN repositories r ON r.id = m.repository_id
      WHERE m.repository_id = $1 AND m.digest = $2${lockClause(lock, 'm')}`,
    [repositoryId, digest],
  );
  const row = r.rows[0];
  if (!row) return null;
  return { ...row, payload: Buffer.isBuffer(row.payload) ? row.payload : Buffer.from(row.payload as Uint8Array) };
}

/** Up to `limit` tags pointing at a manifest. */
export async function tagsOfManifest(tx: SqlExecutor, repositoryId: number, digest: string, limit: number): Promise<string[]> {
  const r = await tx.query<{ name: string }>(`SELECT name FROM tags WHERE repository_id = $1 AND manifest_digest = $2 ORDER BY name LIMIT $3`, [
    repositoryId,
    digest,
    limit,
  ]);
  return r.rows.map((row) => row.name);
}

/** Up to `limit` indexes of the repository that list a manifest as a child. */
export async function parentIndexes(tx: SqlExecutor, repositoryId: number, digest: string, limit: number): Promise<string[]> {
  const r = await tx.query<{ d: string }>(
    `SELECT parent_digest AS d FROM manifest_children WHERE repository_id = $1 AND child_digest = $2 ORDER BY parent_digest LIMIT $3`,
    [repositoryId, digest, limit],
  );
  return r.rows.map((row) => row.d);
}

/** True when the manifest exists in the repository. */
export async function manifestExists(tx: SqlExecutor, repositoryId: number, digest: string): Promise<boolean> {
  const r = await tx.query(`SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2`, [repositoryId, digest]);
  return r.rows.length > 0;
}

/** The manifests of the repository whose subject is `digest` (its referrers). */
export async function referrersOf(tx: SqlExecutor, repositoryId: number, digest: string): Promise<string[]> {
  const r = await tx.query<{ d: string }>(`SELECT digest AS d FROM manifests WHERE repository_id = $1 AND subject_digest = $2 ORDER BY digest`, [
    repositoryId,
    digest,
  ]);
  return r.rows.map((row) => row.d);
}

/**
 * Queues for review the untagged referrers whose subject is gone and that no review waits for (a safety net:
 * deleting a subject queues its referrers, but a subject deleted by an older release or by hand may not have).
 * Resolves with how many it queued.
 */
export async function queueOrphanedReferrers(tx: SqlExecutor, delayMs: number, limit: number): Promise<number> {
  const r = await tx.query(
    `INSERT INTO gc_manifest_review_queue (repository_id, digest, review_after, reason)
     SELECT m.repository_id, m.digest, now() + make_interval(secs => $1::double precision / 1000), 'subject gone'
       FROM manifests m
      WHERE m.subject_digest IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest)
        AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)
        AND NOT EXISTS (SELECT 1 FROM gc_manifest_review_queue q WHERE q.repository_id = m.repository_id AND q.digest = m.digest)
      LIMIT $2
     ON CONFLICT (repository_id, digest) DO NOTHING`,
    [delayMs, limit],
  );
  return r.rowCount;
}
