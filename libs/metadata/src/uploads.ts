/** Typed queries on upload sessions. */
import type { SqlExecutor } from './database';

/** An upload session's state. */
export interface UploadRow {
  id: string;
  repositoryId: number;
  offset: number;
  algorithm: string;
  hashState: Buffer | null;
  /** Who opened the session ('' without auth); only they may continue it. */
  principal: string;
}

const UPLOAD_COLUMNS = `u.id, u.repository_id AS "repositoryId", u.byte_offset AS "offset", u.algorithm, u.hash_state AS "hashState", u.principal`;

function normalise(row: UploadRow | undefined): UploadRow | null {
  if (!row) return null;
  return { ...row, hashState: row.hashState === null ? null : Buffer.from(row.hashState) };
}

/** Opens an upload session, bound to the principal that opened it. */
export async function createUpload(tx: SqlExecutor, id: string, repositoryId: number, algorithm: string, principal = ''): Promise<void> {
  await tx.query(`INSERT INTO uploads (id, repository_id, algorithm, principal) VALUES ($1, $2, $3, $4)`, [id, repositoryId, algorithm, principal]);
}

/**
 * Opens an upload session in an existing repository, by its name, in one statement; false (and nothing written)
 * when there is no such repository.
 */
export async function createUploadInRepository(db: SqlExecutor, id: string, repository: string, algorithm: string, principal = ''): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO uploads (id, repository_id, algorithm, principal) SELECT $1, r.id, $3, $4 FROM repositories r WHERE r.name = $2`,
    [id, repository, algorithm, principal],
  );
  return r.rowCount > 0;
}

/** Finds an upload session of a repository (by repository name). */
export async function findUpload(db: SqlExecutor, repository: string, id: string): Promise<UploadRow | null> {
  const r = await db.query<UploadRow>(
    `SELECT ${UPLOAD_COLUMNS} FROM uploads u JOIN repositories r ON r.id = u.repository_id WHERE r.name = $1 AND u.id = $2`,
    [repository, id],
  );
  return normalise(r.rows[0]);
}

/**
 * Takes the session's write lease if the session is at `offset` and nobody else holds the lease; the row as
 * claimed, or null when it is held, has moved on, or is gone.
 */
export async function claimUpload(db: SqlExecutor, id: string, offset: number, leaseMs: number): Promise<UploadRow | null> {
  const r = await db.query<UploadRow>(
    `UPDATE uploads u SET lease_until = now() + make_interval(secs => $3::double precision / 1000), updated_at = now()
      WHERE u.id = $1 AND u.byte_offset = $2 AND (u.lease_until IS NULL OR u.lease_until < now())
      RETURNING ${UPLOAD_COLUMNS}`,
    [id, offset, leaseMs],
  );
  return normalise(r.rows[0]);
}

/** Records bytes written to a session and releases its lease. */
export async function advanceUpload(db: SqlExecutor, id: string, offset: number, hashState: Buffer | null): Promise<void> {
  await db.query(
    `UPDATE uploads SET byte_offset = $2, hash_state = $3, lease_until = NULL, updated_at = now() WHERE id = $1`,
    [id, offset, hashState],
  );
}

/** Releases a session's lease without recording progress (the write failed). */
export async function releaseUpload(db: SqlExecutor, id: string): Promise<void> {
  await db.query(`UPDATE uploads SET lease_until = NULL WHERE id = $1`, [id]);
}

/** Deletes a session; true when it existed. */
export async function deleteUpload(db: SqlExecutor, id: string): Promise<boolean> {
  const r = await db.query(`DELETE FROM uploads WHERE id = $1`, [id]);
  return r.rowCount > 0;
}

/** How many upload sessions are open (started, neither completed nor cancelled nor purged), registry-wide. */
export async function countOpenUploads(db: SqlExecutor): Promise<number> {
  const r = await db.query<{ open: number }>(`SELECT count(*)::int AS open FROM uploads`);
  return Number(r.rows[0]?.open ?? 0);
}
