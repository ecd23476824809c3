/** Typed queries on manifests, their references, tags and referrers. */
import type { SqlExecutor } from './database';
import { listedRepository } from './repository-deletions';

/** A stored manifest. */
export interface ManifestRow {
  digest: string;
  mediaType: string;
  size: number;
  payload: Buffer;
}

/** A manifest as listed by the referrers API. */
export interface ReferrerRow {
  digest: string;
  mediaType: string;
  size: number;
  artifactType: string | null;
  annotations: Record<string, string> | null;
}

/** A manifest to insert, with what it references. */
export interface NewManifest {
  repositoryId: number;
  digest: string;
  mediaType: string;
  artifactType: string | null;
  payload: Buffer;
  subjectDigest: string | null;
  annotations: Record<string, string> | null;
  /** The blobs it references: stored ones, or (through a pull-through cache only) ones fetched when asked for. */
  blobDigests: string[];
  /** The manifests an index lists, which need not be stored (the same cache fetches them when asked for). */
  childDigests: string[];
}

const MANIFEST_COLUMNS = `m.digest, m.media_type AS "mediaType", m.size, m.payload`;

/**
 * Locks a repository row the way appending its event will (`FOR NO KEY UPDATE`); false once a deletion took the
 * repository out of sight. Every transaction that changes tags or manifests takes its repository before any tag or
 * manifest row, so a push (which locks existing manifest rows: a re-pushed manifest, an index's children) and a tag
 * change or a manifest deletion wait for each other in one order, never in a cycle.
 */
export async function lockRepositoryForEvents(tx: SqlExecutor, repositoryId: number): Promise<boolean> {
  // False once a deletion took the repository out of sight (repository-deletions.ts): its event could not name it, and
  // its rows are the deletion's batches' to delete. After waiting for the lock, Postgres checks the name again on the
  // row as the deletion left it, so a write that found the repository before the deletion committed sees this too.
  const r = await tx.query(`SELECT 1 FROM repositories WHERE id = $1 AND ${listedRepository('name')} FOR NO KEY UPDATE`, [repositoryId]);
  return r.rows.length > 0;
}

function toBuffer(row: ManifestRow): ManifestRow {
  return { ...row, payload: Buffer.isBuffer(row.payload) ? row.payload : Buffer.from(row.payload as Uint8Array) };
}

/**
 * Whether a manifest is still stored: the existence check a cached manifest is confirmed with on every pull against
 * a shared database (one indexed join; the statement text stays fixed so Postgres prepares it once per connection).
 */
export async function storedManifestExists(db: SqlExecutor, repository: string, digest: string): Promise<boolean> {
  return (await db.query(MANIFEST_EXISTS, [repository, digest])).rows.length > 0;
}
const MANIFEST_EXISTS = `SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1 AND m.digest = $2`;

/** The digest a tag points at now, or null: read fresh on every pull by tag against a shared database. */
export async function tagDigest(db: SqlExecutor, repository: string, tag: string): Promise<string | null> {
  return (await db.query<{ digest: string }>(TAG_DIGEST, [repository, tag])).rows[0]?.digest ?? null;
}
const TAG_DIGEST = `SELECT t.manifest_digest AS digest FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = $1 AND t.name = $2`;

/** Finds a manifest of a repository by digest. */
export async function findManifestByDigest(db: SqlExecutor, repository: string, digest: string): Promise<ManifestRow | null> {
  const r = await db.query<ManifestRow>(
    `SELECT ${MANIFEST_COLUMNS} FROM manifests m JOIN repositories r ON r.id = m.repository_id
      WHERE r.name = $1 AND m.digest = $2`,
    [repository, digest],
  );
  return r.rows[0] ? toBuffer(r.rows[0]) : null;
}

/** Finds the manifest a tag points at. */
export async function findManifestByTag(db: SqlExecutor, repository: string, tag: string): Promise<ManifestRow | null> {
  const r = await db.query<ManifestRow>(
    `SELECT ${MANIFEST_COLUMNS} FROM tags t
       JOIN repositories r ON r.id = t.repository_id
       JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
      WHERE r.name = $1 AND t.name = $2`,
    [repository, tag],
  );
  return r.rows[0] ? toBuffer(r.rows[0]) : null;
}

/**
 * The digests among `digests` that are not manifests of the repository. The ones that are stay locked
 * (`FOR KEY SHARE`) for the rest of the transaction, so that the garbage collector cannot delete an index's
 * children under the index being pushed: it waits for the collector, then finds a deleted child missing.
 */
export async function missingManifests(db: SqlExecutor, repositoryId: number, digests: string[]): Promise<string[]> {
  if (digests.length === 0) return [];
  const r = await db.query<{ digest: string }>(
    `SELECT digest FROM manifests WHERE repository_id = $1 AND digest = ANY($2::text[]) ORDER BY digest FOR KEY SHARE`,
    [repositoryId, [...new Set(digests)]],
  );
  const present = new Set(r.rows.map((row) => row.digest));
  return digests.filter((d) => !present.has(d));
}

/**
 * Inserts a manifest and its references; false when it already existed (then nothing is written, and the existing
 * row stays locked `FOR KEY SHARE` for the transaction, as the tags about to point at it need). If the garbage
 * collector deletes the existing row meanwhile, the manifest is inserted afresh.
 */
export async function insertManifest(tx: SqlExecutor, m: NewManifest): Promise<boolean> {
  const values = [m.repositoryId, m.digest, m.mediaType, m.artifactType, m.payload.length, m.payload, m.subjectDigest, m.annotations ? JSON.stringify(m.annotations) : null];
  const blobDigests = [...new Set(m.blobDigests)];
  const childDigests = [...new Set(m.childDigests)];
  for (let attempt = 0; ; attempt++) {
    // The manifest row and its references in one statement (a reference's foreign key is checked at its end, when
    // the row is there); nothing is referenced when the row was there already.
    const inserted = await tx.query(
      `WITH inserted AS (INSERT INTO manifests (repository_id, digest, media_type, artifact_type, size, payload, subject_digest, annotations)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (repository_id, digest) DO NOTHING RETURNING repository_id, digest),
            blob_refs AS (INSERT INTO manifest_blob_references (repository_id, manifest_digest, blob_digest)
                          SELECT i.repository_id, i.digest, d FROM inserted i, unnest($9::text[]) AS d ON CONFLICT DO NOTHING),
            child_refs AS (INSERT INTO manifest_children (repository_id, parent_digest, child_digest)
                           SELECT i.repository_id, i.digest, d FROM inserted i, unnest($10::text[]) AS d ON CONFLICT DO NOTHING)
       SELECT 1 FROM inserted`,
      [...values, blobDigests, childDigests],
    );
    if (inserted.rows.length > 0) return true;
    const held = await tx.query(`SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2 FOR KEY SHARE`, [m.repositoryId, m.digest]);
    if (held.rows.length > 0) return false;
    if (attempt >= 5) throw new Error(`manifest ${m.digest} keeps vanishing while it is pushed`);
  }
}

/** What deleting a manifest unlinked: the caller queues these for garbage-collection review. */
export interface DeletedManifest {
  digest: string;
  mediaType: string;
  size: number;
  blobDigests: string[];
  childDigests: string[];
  tags: string[];
}

/**
 * Deletes a manifest with its tags and references; null when it did not exist. Takes the repository before the
 * manifest row, like every tag change, and like a repository deletion (which cascades to the manifests under its
 * repository lock): taking them the other way round deadlocked with it. (The collector takes a manifest first, but
 * NOWAIT and then the repository within its lock timeout: at worst it gives up and reviews the manifest later.)
 * One cycle is left: an index push holds its children before its repository, so deleting one of those children while
 * it runs deadlocks; the manifest service runs both in `transactionRetryingDeadlocks`, so the victim runs again.
 */
export async function deleteManifest(tx: SqlExecutor, repositoryId: number, digest: string): Promise<DeletedManifest | null> {
  if (!(await lockRepositoryForEvents(tx, repositoryId))) return null;
  const row = await tx.query<{ mediaType: string; size: number }>(
    `SELECT media_type AS "mediaType", size FROM manifests WHERE repository_id = $1 AND digest = $2 FOR UPDATE`,
    [repositoryId, digest],
  );
  if (!row.rows[0]) return null;
  const blobs = await tx.query<{ d: string }>(
    `SELECT blob_digest AS d FROM manifest_blob_references WHERE repository_id = $1 AND manifest_digest = $2`,
    [repositoryId, digest],
  );
  const children = await tx.query<{ d: string }>(
    `SELECT child_digest AS d FROM manifest_children WHERE repository_id = $1 AND parent_digest = $2`,
    [repositoryId, digest],
  );
  const tags = await tx.query<{ name: string }>(
    `DELETE FROM tags WHERE repository_id = $1 AND manifest_digest = $2 RETURNING name`,
    [repositoryId, digest],
  );
  await tx.query(`DELETE FROM manifests WHERE repository_id = $1 AND digest = $2`, [repositoryId, digest]);
  return {
    digest,
    ...row.rows[0],
    blobDigests: blobs.rows.map((r) => r.d),
    childDigests: children.rows.map((r) => r.d),
    tags: tags.rows.map((r) => r.name).sort(),
  };
}

/**
 * Points a tag at a manifest; `changed` is false (and nothing written) when it already pointed there, and
 * `previousDigest` is what it pointed at before (null for a new tag). Takes the repository first
 * (`lockRepositoryForEvents`), unless `repositoryLocked` says this transaction holds it already (it appended an event
 * of the repository, whose sequence update takes the same lock). Every transaction that changes tags holds its
 * repository first, so the tag read below, in a statement after the lock was taken, is the latest, and the read and
 * the write are one statement.
 */
export async function upsertTag(
  tx: SqlExecutor,
  repositoryId: number,
  tag: string,
  digest: string,
  options: { repositoryLocked?: boolean } = {},
): Promise<{ previousDigest: string | null; changed: boolean }> {
  // A push holds its repository (ensureRepository) from before it writes a tag, so a deletion cannot come between.
  if (!options.repositoryLocked && !(await lockRepositoryForEvents(tx, repositoryId))) throw new Error(`repository ${repositoryId} is being deleted`);
  // The upsert locks the tag row it finds (also when it leaves it as it is), as a FOR UPDATE read would.
  const r = await tx.query<{ previous: string | null; changed: boolean }>(
    `WITH before AS (SELECT manifest_digest FROM tags WHERE repository_id = $1 AND name = $2),
          written AS (INSERT INTO tags (repository_id, name, manifest_digest) VALUES ($1, $2, $3)
                      ON CONFLICT (repository_id, name) DO UPDATE SET manifest_digest = EXCLUDED.manifest_digest, updated_at = now()
                        WHERE tags.manifest_digest IS DISTINCT FROM EXCLUDED.manifest_digest
                      RETURNING 1)
     SELECT (SELECT manifest_digest FROM before) AS previous, EXISTS (SELECT 1 FROM written) AS changed`,
    [repositoryId, tag, digest],
  );
  const { previous, changed } = r.rows[0];
  return changed ? { previousDigest: previous, changed: true } : { previousDigest: null, changed: false };
}

/** Deletes a tag; resolves with the digest it pointed at, or null when there was no such tag. */
export async function deleteTag(tx: SqlExecutor, repositoryId: number, tag: string): Promise<string | null> {
  if (!(await lockRepositoryForEvents(tx, repositoryId))) return null;
  const r = await tx.query<{ d: string }>(
    `DELETE FROM tags WHERE repository_id = $1 AND name = $2 RETURNING manifest_digest AS d`,
    [repositoryId, tag],
  );
  return r.rows[0]?.d ?? null;
}

/** Lists a repository's tags in byte order after `last`, at most `limit`. */
export async function listTags(db: SqlExecutor, repositoryId: number, last: string | null, limit: number): Promise<string[]> {
  const r = await db.query<{ name: string }>(
    `SELECT name FROM tags WHERE repository_id = $1 AND ($2::text IS NULL OR name > $2) ORDER BY name LIMIT $3`,
    [repositoryId, last, limit],
  );
  return r.rows.map((row) => row.name);
}

/** Lists the manifests whose subject is `subject`, optionally only those of one artifact type, in digest order. */
export async function listReferrers(db: SqlExecutor, repositoryId: number, subject: string, artifactType: string | null): Promise<ReferrerRow[]> {
  const r = await db.query<ReferrerRow>(
    `SELECT digest, media_type AS "mediaType", size, artifact_type AS "artifactType", annotations
       FROM manifests
      WHERE repository_id = $1 AND subject_digest = $2 AND ($3::text IS NULL OR artifact_type = $3)
      ORDER BY digest`,
    [repositoryId, subject, artifactType],
  );
  return r.rows.map((row) => ({ ...row, annotations: typeof row.annotations === 'string' ? JSON.parse(row.annotations) : row.annotations }));
}
