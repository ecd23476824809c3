/**
 * Namespace quotas at the database (issue 23), on PGlite (embedded) and a real PostgreSQL: usage is the bytes of the
 * distinct blobs a namespace's manifests reference; charges go to counter rows chosen per push, so concurrent pushes
 * do not queue on one row; concurrent pushes overshoot by at most what they bring; reconciliation corrects drift.
 */
import { databaseEngines } from '@lading/testing';
import { upsertNamespace } from './auth-store';
import { insertBlob } from './blobs';
import type { Database, SqlExecutor } from './database';
import { insertManifest } from './manifests';
import { migrate } from './migrate';
import {
  QuotaExceededError,
  USAGE_SHARDS,
  assertBlobFitsQuotas,
  chargeNamespaceQuotas,
  countedNamespaceUsage,
  measureNamespaceUsage,
  namespaceUsage,
  reconcileNamespaceUsage,
  repositoryUsage,
  setNamespaceQuota,
} from './quotas';
import { ensureRepository } from './repositories';

const IMAGE = 'application/vnd.oci.image.manifest.v1+json';
let serial = 1;
const digest = () => `sha256:${(serial++).toString(16).padStart(64, '0')}`;

/** A blob row of `size` bytes. */
async function blob(db: Database, size: number): Promise<string> {
  const d = digest();
  await db.transaction((tx) => insertBlob(tx, d, size));
  return d;
}

/** Pushes a manifest referencing `blobs` into `repository` as a manifest PUT does: charged, then inserted. */
async function push(db: Database, repository: string, blobs: string[], shard = 0, beforeCommit?: (tx: SqlExecutor) => Promise<void>): Promise<void> {
  await db.transaction(async (tx) => {
    const repo = await ensureRepository(tx, repository);
    await chargeNamespaceQuotas(tx, repository, blobs, shard);
    await insertManifest(tx, { repositoryId: repo.id, digest: digest(), mediaType: IMAGE, artifactType: null, payload: Buffer.from('{}'), subjectDigest: null, annotations: null, blobDigests: blobs, childDigests: [] });
    await beforeCommit?.(tx);
  });
}

describe.each(databaseEngines('quotas', 20))('namespace quotas on %s', (engine, open) => {
  let db: Database;
  let drop: () => Promise<void>;
  let n = 0;
  /** A fresh namespace with a quota (specs do not share counts). */
  async function namespace(quotaBytes: number | null): Promise<string> {
    const prefix = `q${n++}`;
    await upsertNamespace(db, prefix, false);
    await setNamespaceQuota(db, prefix, quotaBytes);
    return prefix;
  }

  beforeAll(async () => {
    ({ db, drop } = await open());
    await migrate(db);
  });
  afterAll(async () => {
    await db.close();
    await drop();
  });

  it('counts a blob shared by two repositories of a namespace once, and one of another namespace not at all', async () => {
    const ns = await namespace(10_000);
    const other = await namespace(null);
    const shared = await blob(db, 1000);
    const own = await blob(db, 300);
    await push(db, `${ns}/a`, [shared]);
    await push(db, `${ns}/b`, [shared, own]);
    await push(db, `${other}/c`, [await blob(db, 5000)]);
    expect(await countedNamespaceUsage(db, ns)).toBe(1300);
    expect(await measureNamespaceUsage(db, ns)).toEqual({ bytes: 1300, blobs: 2 });
    expect(await namespaceUsage(db, ns)).toEqual({ prefix: ns, quotaBytes: 10_000, bytes: 1300, blobs: 2, manifests: 2, tags: 0, repositories: 2 });
    expect(await repositoryUsage(db, ns, null, 10)).toEqual([
      { name: `${ns}/a`, bytes: 1000, blobs: 1, manifests: 1, tags: 0 },
      { name: `${ns}/b`, bytes: 1300, blobs: 2, manifests: 1, tags: 0 },
    ]);
    expect(await repositoryUsage(db, ns, `${ns}/a`, 10)).toHaveLength(1);
  });

  it('refuses a push that would exceed the quota, naming usage and limit, and lets one that fits exactly through', async () => {
    const ns = await namespace(1000);
    await push(db, `${ns}/app`, [await blob(db, 600)]);
    const big = await blob(db, 401);
    const refused = await push(db, `${ns}/app`, [big]).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(QuotaExceededError);
    expect((refused as QuotaExceededError).status).toBe(403);
    expect((refused as QuotaExceededError).code).toBe('DENIED');
    expect((refused as QuotaExceededError).detail).toEqual({ namespace: ns, usedBytes: 600, quotaBytes: 1000, addingBytes: 401 });
    expect(await measureNamespaceUsage(db, ns)).toEqual({ bytes: 600, blobs: 1 });
    await push(db, `${ns}/app`, [await blob(db, 400)]);
    expect(await countedNamespaceUsage(db, ns)).toBe(1000);
  });

  it('checks a blob being committed against the quota of a namespace it is new to, not one that holds it', async () => {
    const ns = await namespace(1000);
    const held = await blob(db, 900);
    await push(db, `${ns}/app`, [held]);
    await expect(assertBlobFitsQuotas(db, `${ns}/app`, digest(), 101)).rejects.toBeInstanceOf(QuotaExceededError);
    await expect(assertBlobFitsQuotas(db, `${ns}/other`, held, 900)).resolves.toBeUndefined();
    await expect(assertBlobFitsQuotas(db, `${ns}/app`, digest(), 100)).resolves.toBeUndefined();
  });

  it('counts afresh before refusing, so room freed by deletes since the last reconciliation is used', async () => {
    const ns = await namespace(1000);
    await push(db, `${ns}/old`, [await blob(db, 800)]);
    await db.query(`DELETE FROM manifests m USING repositories r WHERE r.id = m.repository_id AND r.name = $1`, [`${ns}/old`]);
    expect(await countedNamespaceUsage(db, ns)).toBe(800);
    await push(db, `${ns}/new`, [await blob(db, 700)]);
    expect(await countedNamespaceUsage(db, ns)).toBe(700);
  });

  it('reconciliation puts deliberate drift right and reports the count it replaced', async () => {
    const ns = await namespace(10_000);
    await push(db, `${ns}/app`, [await blob(db, 1234)]);
    await db.query(`UPDATE namespace_usage_shards SET bytes = bytes + 5000 WHERE prefix = $1 AND shard = 3`, [ns]);
    expect(await countedNamespaceUsage(db, ns)).toBe(6234);
    expect(await db.transaction((tx) => reconcileNamespaceUsage(tx, ns))).toEqual({ before: 6234, bytes: 1234 });
    expect(await countedNamespaceUsage(db, ns)).toBe(1234);
    const rows = await db.query<{ n: string }>(`SELECT count(*) AS n FROM namespace_usage_shards WHERE prefix = $1`, [ns]);
    expect(Number(rows.rows[0].n)).toBe(USAGE_SHARDS);
  });

  it('charges a nested namespace and the one around it, each against its own quota', async () => {
    const outer = await namespace(5000);
    await upsertNamespace(db, `${outer}/ml`, false);
    await setNamespaceQuota(db, `${outer}/ml`, 1000);
    await push(db, `${outer}/ml/model`, [await blob(db, 900)]);
    expect(await countedNamespaceUsage(db, outer)).toBe(900);
    expect(await countedNamespaceUsage(db, `${outer}/ml`)).toBe(900);
    await expect(push(db, `${outer}/ml/model`, [await blob(db, 200)])).rejects.toBeInstanceOf(QuotaExceededError);
    await push(db, `${outer}/web`, [await blob(db, 2000)]);
    expect(await countedNamespaceUsage(db, outer)).toBe(2900);
  });

  it('16 concurrent pushes overshoot the quota by at most what the others in flight bring, and the count is then true', async () => {
    const ns = await namespace(10 * 1000);
    const blobs = await Promise.all(Array.from({ length: 16 }, () => blob(db, 1000)));
    const results = await Promise.allSettled(blobs.map((b, i) => push(db, `${ns}/r${i % 4}`, [b], i)));
    const accepted = results.filter((r) => r.status === 'fulfilled').length;
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(QuotaExceededError);
    // The documented bound: each push in flight may add what it brings (1000 here) beyond the quota.
    expect(accepted).toBeGreaterThanOrEqual(10);
    expect(accepted * 1000).toBeLessThanOrEqual(10 * 1000 + 15 * 1000);
    if (engine === 'PGlite') expect(accepted).toBe(10); // one connection: pushes run one after another
    const measured = await measureNamespaceUsage(db, ns);
    expect(measured.bytes).toBe(accepted * 1000);
    expect(await countedNamespaceUsage(db, ns)).toBe(accepted * 1000);
  });

  if (engine === 'PostgreSQL') {
    it('two pushes into one namespace on different counter rows do not wait for each other', async () => {
      const ns = await namespace(1_000_000);
      await push(db, `${ns}/seed`, [await blob(db, 1)]); // counted once: the rows exist
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      // The first push charges row 0 and stays open.
      const first = push(db, `${ns}/a`, [await blob(db, 10)], 0, async () => {
        entered();
        await held;
      });
      await inside;
      // The second, on row 1, must finish while the first holds its row: a lock wait would hit the timeout.
      await db.transaction(async (tx) => {
        await tx.query(`SET LOCAL lock_timeout = '2s'`);
        const repo = await ensureRepository(tx, `${ns}/b`);
        await chargeNamespaceQuotas(tx, `${ns}/b`, [await blob(db, 20)].concat([]), 1);
        await insertManifest(tx, { repositoryId: repo.id, digest: digest(), mediaType: IMAGE, artifactType: null, payload: Buffer.from('{}'), subjectDigest: null, annotations: null, blobDigests: [], childDigests: [] });
      });
      release();
      await first;
      expect(await countedNamespaceUsage(db, ns)).toBe(31);
    });
  }
});
