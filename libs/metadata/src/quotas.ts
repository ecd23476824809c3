/**
 * Typed queries on namespace quotas and usage. A namespace's usage is the bytes of the distinct blobs that the
 * manifests of the repositories it covers reference (a layer shared by two of its repositories counts once). It is
 * kept in a few counter rows per namespace (`USAGE_SHARDS`): a push adds the bytes it brings new to one of them, at
 * random, so that concurrent pushes into one namespace do not queue on one row; `reconcileNamespaceUsage` recomputes
 * the true figure from the references and writes it back.
 */
import { OciError } from '@lading/oci';
import type { SqlExecutor } from './database';

/** How many counter rows each namespace with a quota has. */
export const USAGE_SHARDS = 16;

/** A namespace covering a repository, with its quota. */
export interface NamespaceQuota {
  prefix: string;
  quotaBytes: number;
}

/** What a namespace holds, counted from its manifests' references. */
export interface NamespaceUsage {
  prefix: string;
  quotaBytes: number | null;
  bytes: number;
  blobs: number;
  manifests: number;
  tags: number;
  repositories: number;
}

/** What one repository holds. */
export interface RepositoryUsage {
  name: string;
  bytes: number;
  blobs: number;
  manifests: number;
  tags: number;
}

/** The condition "repository `p.name` lies in namespace `$1`": equal, or below it (`$1/...`), by index range. */
const IN_NAMESPACE = `(p.name = $1 OR (p.name >= $1 || '/' AND p.name < $1 || '0'))`;

/** Sets (or, with null, removes) a namespace's quota; false when there is no such namespace. */
export async function setNamespaceQuota(db: SqlExecutor, prefix: string, quotaBytes: number | null): Promise<boolean> {
  return (await db.query(`UPDATE namespaces SET quota_bytes = $2 WHERE prefix = $1`, [prefix, quotaBytes])).rowCount > 0;
}

/**
 * What a process knows of which namespaces have a quota, so that a write into a repository no quota covers skips the
 * quota query (libs/runtime quota-coverage-source.ts keeps one current). It only ever says "maybe": when it does, the
 * write reads the quotas in its transaction, so a changed or removed quota is always seen; a quota on a namespace the
 * coverage does not know yet is enforced once it does (the source's refresh bound).
 */
export interface QuotaCoverage {
  /** False only when no namespace with a quota covered `repository` as of the last refresh. */
  mayCover(repository: string): boolean;
}

/** The coverage of the namespaces `prefixes` (those with a quota). */
export function quotaCoverageOf(prefixes: readonly string[]): QuotaCoverage {
  const exact = new Set(prefixes);
  return {
    mayCover(repository) {
      if (exact.size === 0) return false;
      // `team/ml/app` is covered by `team/ml/app`, `team/ml` or `team`.
      for (let end = repository.length; end > 0; end = repository.lastIndexOf('/', end - 1)) {
        if (exact.has(repository.slice(0, end))) return true;
      }
      return false;
    },
  };
}

/** The namespaces that have a quota, in byte order. */
export async function namespacePrefixesWithQuota(db: SqlExecutor): Promise<string[]> {
  const r = await db.query<{ prefix: string }>(`SELECT prefix FROM namespaces WHERE quota_bytes IS NOT NULL ORDER BY prefix`);
  return r.rows.map((row) => row.prefix);
}

/** The namespaces with a quota that cover `repository` (`team` covers `team` and `team/...`), outermost first. */
export async function quotasCovering(db: SqlExecutor, repository: string): Promise<NamespaceQuota[]> {
  const r = await db.query<{ prefix: string; quota_bytes: string }>(
    `SELECT prefix, quota_bytes FROM namespaces
      WHERE quota_bytes IS NOT NULL AND ($1 = prefix OR left($1, length(prefix) + 1) = prefix || '/')
      ORDER BY length(prefix)`,
    [repository],
  );
  return r.rows.map((row) => ({ prefix: row.prefix, quotaBytes: Number(row.quota_bytes) }));
}

/** The blobs among `digests` that no manifest in the namespace references yet, with their sizes. */
export async function blobsNewToNamespace(db: SqlExecutor, prefix: string, digests: readonly string[]): Promise<{ digest: string; size: number }[]> {
  if (digests.length === 0) return [];
  const r = await db.query<{ digest: string; size: string }>(
    `SELECT b.digest, b.size FROM blobs b
      WHERE b.digest = ANY($2::text[])
        AND NOT EXISTS (SELECT 1 FROM manifest_blob_references r JOIN repositories p ON p.id = r.repository_id
                         WHERE r.blob_digest = b.digest AND ${IN_NAMESPACE})`,
    [prefix, [...new Set(digests)]],
  );
  return r.rows.map((row) => ({ digest: row.digest, size: Number(row.size) }));
}

/** The namespace's counted usage (the sum of its counter rows), or null when it has none yet. */
export async function countedNamespaceUsage(db: SqlExecutor, prefix: string): Promise<number | null> {
  const r = await db.query<{ bytes: string | null; n: string }>(`SELECT sum(bytes) AS bytes, count(*) AS n FROM namespace_usage_shards WHERE prefix = $1`, [prefix]);
  const row = r.rows[0];
  return row && Number(row.n) > 0 ? Number(row.bytes) : null;
}

/** Adds `bytes` to one of the namespace's counter rows; false when it has none yet (reconcile first). */
export async function addNamespaceUsage(db: SqlExecutor, prefix: string, bytes: number, shard: number): Promise<boolean> {
  const r = await db.query(`UPDATE namespace_usage_shards SET bytes = bytes + $3 WHERE prefix = $1 AND shard = $2`, [prefix, shard % USAGE_SHARDS, bytes]);
  return r.rowCount > 0;
}

/** The true usage of a namespace, counted from the references. */
export async function measureNamespaceUsage(db: SqlExecutor, prefix: string): Promise<{ bytes: number; blobs: number }> {
  const r = await db.query<{ bytes: string; blobs: string }>(
    `SELECT coalesce(sum(b.size), 0) AS bytes, count(*) AS blobs FROM blobs b
      WHERE b.digest IN (SELECT r.blob_digest FROM manifest_blob_references r JOIN repositories p ON p.id = r.repository_id
                          WHERE ${IN_NAMESPACE})`,
    [prefix],
  );
  return { bytes: Number(r.rows[0]?.bytes ?? 0), blobs: Number(r.rows[0]?.blobs ?? 0) };
}

/**
 * Recomputes a namespace's usage from the references and writes it into its counter rows (creating them), in the
 * caller's transaction; resolves with the counted figure it replaced (null when there were no rows) and the true one.
 * The rows are locked first, so a push that added to one and has not committed is waited for and then counted.
 */
export async function reconcileNamespaceUsage(tx: SqlExecutor, prefix: string): Promise<{ before: number | null; bytes: number }> {
  const shards = Array.from({ length: USAGE_SHARDS }, (_, i) => i);
  await tx.query(`INSERT INTO namespace_usage_shards (prefix, shard, bytes) SELECT $1, s, 0 FROM unnest($2::int[]) AS s ON CONFLICT DO NOTHING`, [prefix, shards]);
  const locked = await tx.query<{ bytes: string }>(`SELECT bytes FROM namespace_usage_shards WHERE prefix = $1 ORDER BY shard FOR UPDATE`, [prefix]);
  const before = locked.rows.reduce((sum, row) => sum + Number(row.bytes), 0);
  const { bytes } = await measureNamespaceUsage(tx, prefix);
  await tx.query(`UPDATE namespace_usage_shards SET bytes = CASE WHEN shard = 0 THEN $2::bigint ELSE 0 END WHERE prefix = $1`, [prefix, bytes]);
  return { before, bytes };
}

/** Drops the counter rows of namespaces that no longer have a quota (or no longer exist). */
export async function dropUnusedUsageCounters(db: SqlExecutor): Promise<number> {
  const r = await db.query(`DELETE FROM namespace_usage_shards s WHERE NOT EXISTS (SELECT 1 FROM namespaces n WHERE n.prefix = s.prefix AND n.quota_bytes IS NOT NULL)`);
  return r.rowCount;
}

/** The namespaces that have a quota. */
export async function namespacesWithQuota(db: SqlExecutor): Promise<NamespaceQuota[]> {
  const r = await db.query<{ prefix: string; quota_bytes: string }>(`SELECT prefix, quota_bytes FROM namespaces WHERE quota_bytes IS NOT NULL ORDER BY prefix`);
  return r.rows.map((row) => ({ prefix: row.prefix, quotaBytes: Number(row.quota_bytes) }));
}

/** A namespace's usage report: its true usage and what its repositories hold together. */
export async function namespaceUsage(db: SqlExecutor, prefix: string): Promise<NamespaceUsage | null> {
  const ns = await db.query<{ quota_bytes: string | null }>(`SELECT quota_bytes FROM namespaces WHERE prefix = $1`, [prefix]);
  if (!ns.rows[0]) return null;
  const { bytes, blobs } = await measureNamespaceUsage(db, prefix);
  const counts = await db.query<{ repositories: string; manifests: string; tags: string }>(
    `SELECT count(*) AS repositories,
            coalesce(sum((SELECT count(*) FROM manifests m WHERE m.repository_id = p.id)), 0) AS manifests,
            coalesce(sum((SELECT count(*) FROM tags t WHERE t.repository_id = p.id)), 0) AS tags
       FROM repositories p WHERE ${IN_NAMESPACE}`,
    [prefix],
  );
  const c = counts.rows[0];
  const quota = ns.rows[0].quota_bytes;
  return {
    prefix,
    quotaBytes: quota === null ? null : Number(quota),
    bytes,
    blobs,
    manifests: Number(c?.manifests ?? 0),
    tags: Number(c?.tags ?? 0),
    repositories: Number(c?.repositories ?? 0),
  };
}

/** What each repository of a namespace holds, by name after `last`, at most `limit` of them. */
export async function repositoryUsage(db: SqlExecutor, prefix: string, last: string | null, limit: number): Promise<RepositoryUsage[]> {
  const r = await db.query<{ name: string; bytes: string; blobs: string; manifests: string; tags: string }>(
    `SELECT p.name,
            (SELECT coalesce(sum(b.size), 0) FROM blobs b WHERE b.digest IN (SELECT r.blob_digest FROM manifest_blob_references r WHERE r.repository_id = p.id)) AS bytes,
            (SELECT count(DISTINCT r.blob_digest) FROM manifest_blob_references r WHERE r.repository_id = p.id) AS blobs,
            (SELECT count(*) FROM manifests m WHERE m.repository_id = p.id) AS manifests,
            (SELECT count(*) FROM tags t WHERE t.repository_id = p.id) AS tags
       FROM repositories p
      WHERE ${IN_NAMESPACE} AND ($2::text IS NULL OR p.name > $2)
      ORDER BY p.name LIMIT $3`,
    [prefix, last, limit],
  );
  return r.rows.map((row) => ({ name: row.name, bytes: Number(row.bytes), blobs: Number(row.blobs), manifests: Number(row.manifests), tags: Number(row.tags) }));
}

/** Whether any manifest in the namespace references the blob. */
export async function blobReferencedInNamespace(db: SqlExecutor, prefix: string, digest: string): Promise<boolean> {
  const r = await db.query(
    `SELECT 1 FROM manifest_blob_references r JOIN repositories p ON p.id = r.repository_id
      WHERE r.blob_digest = $2 AND ${IN_NAMESPACE} LIMIT 1`,
    [prefix, digest],
  );
  return r.rows.length > 0;
}

/** The figures a refused push is told (in the error's detail). */
export interface QuotaExceeded {
  namespace: string;
  usedBytes: number;
  quotaBytes: number;
  addingBytes: number;
}

/** Refused: the change would take a namespace over its quota. */
export class QuotaExceededError extends OciError {
  constructor(readonly exceeded: QuotaExceeded) {
    super('DENIED', `quota exceeded: namespace ${exceeded.namespace} holds ${exceeded.usedBytes} of ${exceeded.quotaBytes} bytes and this would add ${exceeded.addingBytes}`, exceeded);
  }
}

/**
 * Charges a manifest's blobs to the quotas of the namespaces covering `repository`, in the manifest's write
 * transaction: the bytes of the blobs no manifest of a namespace references yet are added to one of its counter rows
 * (`shard`), or the push is refused with QuotaExceededError when they would take it over its quota. A namespace whose
 * count says "over" is counted afresh first (deletes since the last reconciliation free room). Concurrent pushes read
 * each other's counts only once committed: each may add up to what it brings beyond the quota (the overshoot bound).
 */
export async function chargeNamespaceQuotas(tx: SqlExecutor, repository: string, blobDigests: readonly string[], shard: number, coverage?: QuotaCoverage): Promise<void> {
  if (coverage && !coverage.mayCover(repository)) return;
  for (const quota of await quotasCovering(tx, repository)) {
    const adding = (await blobsNewToNamespace(tx, quota.prefix, blobDigests)).reduce((sum, b) => sum + b.size, 0);
    if (adding === 0) continue;
    let used = await countedNamespaceUsage(tx, quota.prefix);
    if (used === null || used + adding > quota.quotaBytes) used = (await reconcileNamespaceUsage(tx, quota.prefix)).bytes;
    if (used + adding > quota.quotaBytes) throw new QuotaExceededError({ namespace: quota.prefix, usedBytes: used, quotaBytes: quota.quotaBytes, addingBytes: adding });
    await addNamespaceUsage(tx, quota.prefix, adding, shard);
  }
}

/**
 * Checks that a blob about to be committed into `repository` fits the quotas covering it (nothing is charged: a blob
 * counts once a manifest references it); throws QuotaExceededError when a namespace it is new to would go over.
 */
export async function assertBlobFitsQuotas(db: SqlExecutor, repository: string, digest: string, size: number, coverage?: QuotaCoverage): Promise<void> {
  if (coverage && !coverage.mayCover(repository)) return;
  for (const quota of await quotasCovering(db, repository)) {
    if (await blobReferencedInNamespace(db, quota.prefix, digest)) continue;
    const used = (await countedNamespaceUsage(db, quota.prefix)) ?? (await measureNamespaceUsage(db, quota.prefix)).bytes;
    if (used + size > quota.quotaBytes) {
      // The count may be stale high after deletes: the true figure decides.
      const measured = (await measureNamespaceUsage(db, quota.prefix)).bytes;
      if (measured + size > quota.quotaBytes) throw new QuotaExceededError({ namespace: quota.prefix, usedBytes: measured, quotaBytes: quota.quotaBytes, addingBytes: size });
    }
  }
}
