/**
 * Tombstones and pins: how a stored object is deleted after its metadata without ever deleting an object that a
 * blob row (or an upload about to record one) relies on.
 *
 * - The collector deletes a blob row and writes the tombstone `blob:<digest>` in one transaction; later, holding
 *   the tombstone row `FOR UPDATE`, it checks that no blob row and no live pin names the digest, deletes the
 *   object, and deletes the tombstone. A failed deletion leaves the tombstone, which is retried.
 * - An upload pins the digest before it commits the object (`commitUpload` keeps an object that already exists),
 *   in a transaction that takes the tombstone `FOR SHARE`: it waits for a deletion in progress, and a deletion
 *   that starts later sees the pin. The upload unpins in the transaction that records the blob row
 *   (`recordBlobObject`), so the collector sees the pin or the row, never neither.
 * - A pin older than the pin TTL is stale (its upload died between commit and record) and is ignored.
 */
import { randomUUID } from 'node:crypto';
import type { Database, SqlExecutor } from './database';
import { insertBlob, lockBlob } from './blobs';

/** A stored object waiting to be deleted. */
export interface Tombstone {
  key: string;
  kind: 'blob' | 'upload';
  /** The blob's digest or the upload's id. */
  target: string;
  size: number;
  attempts: number;
  createdAt: Date;
  lastError: string | null;
}

const TOMBSTONE_COLUMNS = `key, kind, target, size, attempts, created_at AS "createdAt", last_error AS "lastError"`;

/** The tombstone key of a blob's object. */
export function blobTombstoneKey(digest: string): string {
  return `blob:${digest}`;
}

/** Claims the oldest due tombstone that no other collector holds. */
export async function claimTombstone(tx: SqlExecutor): Promise<Tombstone | null> {
  const r = await tx.query<Tombstone>(
    `SELECT ${TOMBSTONE_COLUMNS} FROM gc_tombstones WHERE retry_after <= now() ORDER BY retry_after LIMIT 1 FOR UPDATE SKIP LOCKED`,
  );
  return r.rows[0] ?? null;
}

/** Claims one tombstone by key, unless another collector holds it or it is gone. */
export async function claimTombstoneByKey(tx: SqlExecutor, key: string): Promise<Tombstone | null> {
  const r = await tx.query<Tombstone>(`SELECT ${TOMBSTONE_COLUMNS} FROM gc_tombstones WHERE key = $1 FOR UPDATE SKIP LOCKED`, [key]);
  return r.rows[0] ?? null;
}

/** Lists tombstones (oldest first), for the operator's view. */
export async function listTombstones(db: SqlExecutor, limit: number): Promise<Tombstone[]> {
  return (await db.query<Tombstone>(`SELECT ${TOMBSTONE_COLUMNS} FROM gc_tombstones ORDER BY created_at LIMIT $1`, [limit])).rows;
}

/** Why a blob's object must stay: a blob row names it again, or an upload has pinned it; null when it may go. */
export async function blobObjectInUse(tx: SqlExecutor, digest: string, pinTtlMs: number): Promise<'recorded' | 'pinned' | null> {
  const r = await tx.query<{ recorded: boolean; pinned: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = $1) AS recorded,
            EXISTS (SELECT 1 FROM gc_blob_pins WHERE digest = $1 AND created_at > now() - make_interval(secs => $2::double precision / 1000)) AS pinned`,
    [digest, pinTtlMs],
  );
  const row = r.rows[0];
  return row.recorded ? 'recorded' : row.pinned ? 'pinned' : null;
}

/** Deletes a tombstone (its object is gone, or belongs to a blob row again). */
export async function deleteTombstone(tx: SqlExecutor, key: string): Promise<void> {
  await tx.query(`DELETE FROM gc_tombstones WHERE key = $1`, [key]);
}

/** Puts a tombstone off by `afterMs`; `error` (a failed deletion) counts an attempt. */
export async function retryTombstoneLater(db: SqlExecutor, key: string, afterMs: number, error: string | null): Promise<void> {
  await db.query(
    `UPDATE gc_tombstones SET retry_after = now() + make_interval(secs => $2::double precision / 1000),
            attempts = attempts + CASE WHEN $3::text IS NULL THEN 0 ELSE 1 END, last_error = COALESCE($3::text, last_error)
      WHERE key = $1`,
    [key, Math.max(0, afterMs), error === null ? null : error.slice(0, 500)],
  );
}

/** An upload session's write lease, taken in the statement that pins its blob (see `claimUpload`). */
export interface PinClaim {
  uploadId: string;
  /** The offset the session must be at. */
  offset: number;
  leaseMs: number;
}

/**
 * Pins a digest before an upload commits its object: waits for a deletion of that object in progress, then
 * records the pin, committed on its own (`db` is not a transaction: the pin must be visible to the collector before
 * the object is committed). `claim`, when given, takes the upload session's write lease in the same statement: the
 * pin is written only when the lease is taken, and the result is null (nothing written) when it is not. `prepare`,
 * when given, runs first in the pin's transaction (a quota check): the checks and the pin commit together, in one
 * commit instead of one each, and a check that throws leaves no pin. Without `prepare` the pin (with its claim) is
 * one autocommitted statement. Resolves with the pin's id, for `recordBlobObject`.
 */
export async function pinBlobObject(
  db: Database,
  digest: string,
  options: { claim?: PinClaim; prepare?: (tx: SqlExecutor) => Promise<void> } = {},
): Promise<string | null> {
  const id = randomUUID();
  const { claim, prepare } = options;
  // Counting the tombstone rows makes the statement take their lock (FOR SHARE) before it inserts the pin, and hold
  // it until the pin commits, as a transaction of the two statements would. The claim is claimUpload's UPDATE.
  const pin = async (executor: SqlExecutor) => {
    const r = claim
      ? await executor.query(
          `WITH deletion AS (SELECT 1 FROM gc_tombstones WHERE key = $1 FOR SHARE),
                claimed AS (UPDATE uploads u SET lease_until = now() + make_interval(secs => $6::double precision / 1000), updated_at = now()
                             WHERE u.id = $4 AND u.byte_offset = $5 AND (u.lease_until IS NULL OR u.lease_until < now()) RETURNING u.id)
           INSERT INTO gc_blob_pins (id, digest) SELECT $2, $3 FROM (SELECT count(*) FROM deletion) AS waited WHERE EXISTS (SELECT 1 FROM claimed)`,
          [blobTombstoneKey(digest), id, digest, claim.uploadId, claim.offset, claim.leaseMs],
        )
      : await executor.query(
          `WITH deletion AS (SELECT 1 FROM gc_tombstones WHERE key = $1 FOR SHARE)
           INSERT INTO gc_blob_pins (id, digest) SELECT $2, $3 FROM (SELECT count(*) FROM deletion) AS waited`,
          [blobTombstoneKey(digest), id, digest],
        );
    return r.rowCount > 0;
  };
  const pinned = prepare
    ? await db.transaction(async (tx) => {
        await prepare(tx);
        return pin(tx);
      })
    : await pin(db);
  return pinned ? id : null;
}

/** Removes a pin outside a recording transaction (the commit failed). */
export async function unpinBlobObject(db: SqlExecutor, pinId: string): Promise<void> {
  await db.query(`DELETE FROM gc_blob_pins WHERE id = $1`, [pinId]);
}

/**
 * Records a stored blob and holds its row (`FOR SHARE`) for the rest of the transaction, then drops the upload's
 * pin. If the collector deletes the row between the insert and the lock (it held the row when the insert looked),
 * the row is inserted again: the object is safe, the pin kept the collector from deleting it.
 */
export async function recordBlobObject(tx: SqlExecutor, digest: string, size: number, pinId: string | null): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    // A row this transaction inserted is its own until commit: nobody else can delete it, so only a row that was
    // already there needs the shared lock (one statement fewer for a new blob, nearly every push).
    if (await insertBlob(tx, digest, size)) break;
    if (await lockBlob(tx, digest)) break;
    if (attempt >= 5) throw new Error(`blob ${digest} keeps vanishing while it is recorded`);
  }
  if (pinId) await tx.query(`DELETE FROM gc_blob_pins WHERE id = $1`, [pinId]);
}

/** What `recordUploadedBlob` did, for the caller to finish what it could not. */
export interface RecordedUpload {
  /** The repository's id, or null when there is no such repository (nothing was linked). */
  repositoryId: number | null;
  /** False when the blob row was neither inserted nor found to lock (the collector deleted it): nothing was linked. */
  blobHeld: boolean;
  /** True when the link to the repository is new. */
  linked: boolean;
}

/**
 * Records an uploaded blob in ONE statement, in the caller's transaction: locks the repository `FOR KEY SHARE` (as
 * ensureRepository), inserts the blob row or, when it is there already, holds it `FOR SHARE` (as recordBlobObject),
 * drops the pin, links the blob to the repository and deletes the upload session `uploadId` (if any). The caller
 * queues the blob's review after its event (queueBlobReview): the review row after the repository, as a manifest push
 * or deletion takes them (the other order deadlocked with them). The link is made only when the repository
 * exists and the blob row is held; otherwise the caller creates the repository or records the row again
 * (recordBlobObject), then links. The same rows as those functions' statements, one trip into the database.
 */
export async function recordUploadedBlob(
  tx: SqlExecutor,
  blob: { repository: string; digest: string; size: number; pinId: string; uploadId: string | null },
): Promise<RecordedUpload> {
  const r = await tx.query<RecordedUpload>(
    `WITH repo AS (SELECT id FROM repositories WHERE name = $1::text FOR KEY SHARE),
          inserted AS (INSERT INTO blobs (digest, size) VALUES ($2::text, $3::bigint) ON CONFLICT (digest) DO NOTHING RETURNING digest),
          held AS (SELECT digest FROM blobs WHERE digest = $2::text AND NOT EXISTS (SELECT 1 FROM inserted) FOR SHARE),
          unpinned AS (DELETE FROM gc_blob_pins WHERE id = $4::uuid),
          linked AS (INSERT INTO repository_blobs (repository_id, blob_digest)
                       SELECT repo.id, $2::text FROM repo WHERE EXISTS (SELECT 1 FROM inserted UNION ALL SELECT 1 FROM held)
                       ON CONFLICT DO NOTHING RETURNING 1),
          closed AS (DELETE FROM uploads WHERE id = $5::uuid)
     SELECT (SELECT id FROM repo) AS "repositoryId",
            EXISTS (SELECT 1 FROM inserted UNION ALL SELECT 1 FROM held) AS "blobHeld",
            EXISTS (SELECT 1 FROM linked) AS linked`,
    [blob.repository, blob.digest, blob.size, blob.pinId, blob.uploadId],
  );
  const row = r.rows[0];
  return { repositoryId: row.repositoryId === null ? null : Number(row.repositoryId), blobHeld: row.blobHeld, linked: row.linked };
}

/** Deletes pins older than `ttlMs` (their uploads died between commit and record); resolves with how many. */
export async function deleteStalePins(db: SqlExecutor, ttlMs: number): Promise<number> {
  const r = await db.query(`DELETE FROM gc_blob_pins WHERE created_at < now() - make_interval(secs => $1::double precision / 1000)`, [ttlMs]);
  return r.rowCount;
}

/** An upload session that has been idle longer than the upload TTL. */
export interface ExpiredUpload {
  id: string;
  repository: string;
  updatedAt: Date;
}

/** Lists (without deleting) up to `limit` upload sessions idle longer than `ttlMs`. */
export async function listExpiredUploads(db: SqlExecutor, ttlMs: number, limit: number): Promise<ExpiredUpload[]> {
  const r = await db.query<ExpiredUpload>(
    `SELECT u.id, r.name AS repository, u.updated_at AS "updatedAt" FROM uploads u JOIN repositories r ON r.id = u.repository_id
      WHERE u.updated_at < now() - make_interval(secs => $1::double precision / 1000) AND (u.lease_until IS NULL OR u.lease_until < now())
      ORDER BY u.updated_at LIMIT $2`,
    [ttlMs, limit],
  );
  return r.rows;
}

/**
 * Deletes up to `limit` upload sessions idle longer than `ttlMs` (skipping any another transaction holds) and writes
 * a tombstone for each one's stored data, in one transaction. Resolves with the deleted sessions' ids.
 */
export async function expireUploads(tx: SqlExecutor, ttlMs: number, limit: number): Promise<string[]> {
  const r = await tx.query<{ id: string }>(
    `WITH expired AS (
       SELECT id FROM uploads
        WHERE updated_at < now() - make_interval(secs => $1::double precision / 1000) AND (lease_until IS NULL OR lease_until < now())
        ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)
     DELETE FROM uploads u USING expired WHERE u.id = expired.id RETURNING u.id::text AS id`,
    [ttlMs, limit],
  );
  const ids = r.rows.map((row) => row.id);
  if (ids.length > 0) {
    await tx.query(
      `INSERT INTO gc_tombstones (key, kind, target) SELECT 'upload:' || id, 'upload', id FROM unnest($1::text[]) AS id ON CONFLICT (key) DO NOTHING`,
      [ids],
    );
  }
  return ids;
}
