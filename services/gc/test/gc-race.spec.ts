/**
 * Race tests in the style of GitLab's online GC tests, on real Postgres: the collector is paused while it holds
 * its lock on a candidate row (a blob, a manifest, an object's tombstone), the API is called, and each call must
 * either wait and then proceed, or wait and then fail cleanly with the OCI error a client understands — within a
 * bounded time after the collector lets go, and never leaving a manifest that points at something deleted.
 * Needs `tools/infra/infra up` (npm test runs it first).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GcTarget, GcWorker, createGcWorker } from '../src';
import * as meta from '@lading/metadata';
import { blobKey } from '@lading/storage';
import { TestBlob, TestManifest, imageIndex, imageManifest, makeBlob } from '@lading/testing';
import { RealParts, openRealParts } from './real-infra';
import { Answer, RegistryClient, RegistryUnderTest, startRegistry } from './registry-under-test';

/** How long a call must stay blocked while the collector holds its lock. */
const HELD_MS = 600;
/** How soon after the collector lets go a blocked call must be answered. */
const BOUND_MS = 5_000;

/** A pause point: the collector stops at the first target `matches` accepts, until released. */
class Gate {
  private matches: ((t: GcTarget) => boolean) | null = null;
  private reachedResolve: (() => void) | null = null;
  private releaseResolve: (() => void) | null = null;
  reached: Promise<void> = Promise.resolve();
  private released: Promise<void> = Promise.resolve();

  arm(matches: (t: GcTarget) => boolean): void {
    this.matches = matches;
    this.reached = new Promise((resolve) => (this.reachedResolve = resolve));
    this.released = new Promise((resolve) => (this.releaseResolve = resolve));
  }

  async pass(target: GcTarget): Promise<void> {
    if (!this.matches || !this.matches(target)) return;
    this.matches = null;
    this.reachedResolve?.();
    await this.released;
  }

  release(): void {
    this.releaseResolve?.();
  }
}

/** A request whose settling is observed. */
function track(promise: Promise<Answer>): { promise: Promise<Answer>; settledAt: () => number | null } {
  let at: number | null = null;
  const p = promise.finally(() => {
    at = Date.now();
  });
  return { promise: p, settledAt: () => at };
}

describe('garbage collection races on real Postgres', () => {
  let parts: RealParts;
  let root: string;
  let reg: RegistryUnderTest;
  let api: RegistryClient;
  let gc: GcWorker;
  const afterLock = new Gate();
  const beforeObjectDelete = new Gate();

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'lading-gc-race-'));
    parts = await openRealParts({ name: 'race', storage: 'filesystem', storageRoot: root, poolSize: 20, config: { gc: { reviewDelay: '1h' } } });
    reg = await startRegistry(parts);
    api = reg.client;
    gc = createGcWorker({ ...parts, hooks: { afterLock: (t) => afterLock.pass(t), beforeObjectDelete: (t) => beforeObjectDelete.pass(t) } });
  }, 60_000);
  afterAll(async () => {
    await reg?.close();
    await parts?.close();
    await rm(root, { recursive: true, force: true });
  });

  function image(layers: TestBlob[] = [makeBlob(256)]) {
    const config = makeBlob(`{"architecture":"amd64","os":"linux","n":"${randomBytes(8).toString('hex')}"}`);
    return { config, layers, manifest: imageManifest(config, layers), blobs: [config, ...layers] };
  }

  /** Makes a blob's review due now; `oldLinks` also puts its upload links past the grace window. */
  async function blobDue(digest: string, oldLinks = true): Promise<void> {
    await meta.queueBlobReview(parts.db, [digest], 'race test', 0);
    await parts.db.query(`UPDATE gc_blob_review_queue SET review_after = now() - interval '1 second' WHERE digest = $1`, [digest]);
    if (oldLinks) await parts.db.query(`UPDATE repository_blobs SET created_at = now() - interval '2 hours' WHERE blob_digest = $1`, [digest]);
  }

  async function manifestDue(repository: string, digest: string): Promise<void> {
    const repo = await meta.findRepository(parts.db, repository);
    await meta.queueManifestReview(parts.db, repo!.id, [digest], 'race test', 0);
    await parts.db.query(`UPDATE gc_manifest_review_queue SET review_after = now() - interval '1 second' WHERE repository_id = $1 AND digest = $2`, [repo!.id, digest]);
  }

  /**
   * Pauses the collector on `target` (holding its lock), starts `call`, checks that it is still waiting after
   * HELD_MS (unless `blocks` is false: then it must be answered while the lock is held), lets the collector go,
   * and resolves with the answer, which must come within BOUND_MS.
   */
  async function raceWhileLocked(gate: Gate, matches: (t: GcTarget) => boolean, call: () => Promise<Answer>, blocks = true): Promise<Answer> {
    gate.arm(matches);
    const collecting = gc.runUntilIdle();
    await Promise.race([gate.reached, collecting.then(() => Promise.reject(new Error('the collector never reached the row')))]);
    const started = Date.now();
    const req = track(call());
    await new Promise((r) => setTimeout(r, HELD_MS));
    if (blocks) expect(req.settledAt()).toBeNull();
    else expect(req.settledAt()).not.toBeNull();
    const released = Date.now();
    gate.release();
    await collecting;
    const answer = await req.promise;
    const waited = (req.settledAt() as number) - started;
    if (blocks) {
      expect(waited).toBeGreaterThanOrEqual(HELD_MS);
      expect((req.settledAt() as number) - released).toBeLessThan(BOUND_MS);
    }
    return answer;
  }

  const isBlob = (digest: string) => (t: GcTarget) => t.kind === 'blob' && t.digest === digest;
  const isManifest = (digest: string) => (t: GcTarget) => t.kind === 'manifest' && t.digest === digest;
  const isObject = (digest: string) => (t: GcTarget) => t.kind === 'object' && t.digest === digest;

  async function blobRow(digest: string): Promise<boolean> {
    return (await parts.db.query(`SELECT 1 FROM blobs WHERE digest = $1`, [digest])).rows.length > 0;
  }

  async function pullsWhole(repository: string, reference: string, manifest: TestManifest, blobs: TestBlob[]): Promise<void> {
    const got = await api.getManifest(repository, reference);
    expect(got.status).toBe(200);
    expect(got.headers.get('docker-content-digest')).toBe(manifest.digest);
    for (const b of blobs) {
      const blob = await api.getBlob(repository, b.digest);
      expect(blob.status).toBe(200);
      expect(createHash('sha256').update(blob.body).digest('hex')).toBe(b.digest.slice(7));
    }
  }

  it('manifest PUT referencing a blob the collector is deleting: waits, then 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const img = image();
    for (const b of img.blobs) expect((await api.uploadBlob('race/put', b)).status).toBe(201);
    await blobDue(img.layers[0].digest);
    const answer = await raceWhileLocked(afterLock, isBlob(img.layers[0].digest), () => api.putManifest('race/put', 'v1', img.manifest));
    expect(answer).toMatchObject({ status: 400, code: 'MANIFEST_BLOB_UNKNOWN' });
    expect(await blobRow(img.layers[0].digest)).toBe(false);
    expect(await meta.findManifestByDigest(parts.db, 'race/put', img.manifest.digest)).toBeNull();
  });

  it('manifest PUT referencing a blob the collector keeps (an upload in its grace window): waits, then 201', async () => {
    const img = image();
    for (const b of img.blobs) expect((await api.uploadBlob('race/put-kept', b)).status).toBe(201);
    await blobDue(img.layers[0].digest, false);
    const answer = await raceWhileLocked(afterLock, isBlob(img.layers[0].digest), () => api.putManifest('race/put-kept', 'v1', img.manifest));
    expect(answer.status).toBe(201);
    await pullsWhole('race/put-kept', 'v1', img.manifest, img.blobs);
  });

  it('tag create on a manifest the collector is deleting: waits, then 201 with the manifest pushed afresh', async () => {
    const img = image();
    expect((await api.pushImage('race/tag', img.manifest.digest, img.manifest, img.blobs)).status).toBe(201);
    await manifestDue('race/tag', img.manifest.digest);
    const answer = await raceWhileLocked(afterLock, isManifest(img.manifest.digest), () => api.putManifest('race/tag', 'v1', img.manifest));
    expect(answer.status).toBe(201);
    expect(parts.problems.filter((p) => p.level >= 50)).toEqual([]);
    await pullsWhole('race/tag', 'v1', img.manifest, img.blobs);
  });

  it('mount of a blob the collector is deleting: waits, then 202 (an upload session, nothing mounted)', async () => {
    const blob = makeBlob(300);
    expect((await api.uploadBlob('race/mount-src', blob)).status).toBe(201);
    await blobDue(blob.digest);
    const answer = await raceWhileLocked(afterLock, isBlob(blob.digest), () => api.mount('race/mount-dst', blob.digest, 'race/mount-src'));
    expect(answer.status).toBe(202);
    expect((await api.headBlob('race/mount-dst', blob.digest)).status).toBe(404);
  });

  it('mount of a blob the collector keeps: waits, then 201 mounted', async () => {
    const blob = makeBlob(301);
    expect((await api.uploadBlob('race/mount-src2', blob)).status).toBe(201);
    await blobDue(blob.digest, false);
    const answer = await raceWhileLocked(afterLock, isBlob(blob.digest), () => api.mount('race/mount-dst2', blob.digest, 'race/mount-src2'));
    expect(answer.status).toBe(201);
    expect((await api.getBlob('race/mount-dst2', blob.digest)).status).toBe(200);
  });

  it('blob HEAD while the collector holds the blob: answered at once (200), and 404 once the delete commits', async () => {
    const blob = makeBlob(302);
    expect((await api.uploadBlob('race/head', blob)).status).toBe(201);
    await blobDue(blob.digest);
    const answer = await raceWhileLocked(afterLock, isBlob(blob.digest), () => api.headBlob('race/head', blob.digest), false);
    expect(answer.status).toBe(200);
    expect((await api.headBlob('race/head', blob.digest)).status).toBe(404);
  });

  it('index PUT listing a child manifest the collector is deleting: waits, then 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const child = image();
    const other = image();
    for (const c of [child, other]) expect((await api.pushImage('race/index', c.manifest.digest, c.manifest, c.blobs)).status).toBe(201);
    await manifestDue('race/index', child.manifest.digest);
    const index = imageIndex([child.manifest, other.manifest]);
    const answer = await raceWhileLocked(afterLock, isManifest(child.manifest.digest), () => api.putManifest('race/index', 'v1', index));
    expect(answer).toMatchObject({ status: 400, code: 'MANIFEST_BLOB_UNKNOWN' });
    expect(await meta.findManifestByDigest(parts.db, 'race/index', index.digest)).toBeNull();
  });

  it('index PUT listing a child manifest the collector keeps (tagged): waits, then 201', async () => {
    const child = image();
    expect((await api.pushImage('race/index2', 'child', child.manifest, child.blobs)).status).toBe(201);
    await manifestDue('race/index2', child.manifest.digest);
    const index = imageIndex([child.manifest]);
    const answer = await raceWhileLocked(afterLock, isManifest(child.manifest.digest), () => api.putManifest('race/index2', 'v1', index));
    expect(answer.status).toBe(201);
    await pullsWhole('race/index2', child.manifest.digest, child.manifest, child.blobs);
  });

  it('blob upload of a blob the collector is deleting: waits, then 201, and the object survives', async () => {
    const blob = makeBlob(303);
    expect((await api.uploadBlob('race/reup', blob)).status).toBe(201);
    await blobDue(blob.digest);
    const answer = await raceWhileLocked(afterLock, isBlob(blob.digest), () => api.uploadBlob('race/reup', blob));
    expect(answer.status).toBe(201);
    await gc.runUntilIdle();
    expect(await blobRow(blob.digest)).toBe(true);
    expect(await parts.store.stat(blobKey(blob.digest))).toEqual({ size: blob.size });
    const got = await api.getBlob('race/reup', blob.digest);
    expect(createHash('sha256').update(got.body).digest('hex')).toBe(blob.digest.slice(7));
  });

  it('blob upload while the collector deletes the old object: waits for the deletion, then stores the bytes afresh', async () => {
    const blob = makeBlob(304);
    expect((await api.uploadBlob('race/reup2', blob)).status).toBe(201);
    await blobDue(blob.digest);
    const answer = await raceWhileLocked(beforeObjectDelete, isObject(blob.digest), () => api.uploadBlob('race/reup2', blob));
    expect(answer.status).toBe(201);
    expect(await blobRow(blob.digest)).toBe(true);
    expect(await parts.store.stat(blobKey(blob.digest))).toEqual({ size: blob.size });
    expect((await api.getBlob('race/reup2', blob.digest)).status).toBe(200);
  });

  it('the collector never waits on a push: a blob a manifest PUT holds is put off, not deleted', async () => {
    const img = image();
    for (const b of img.blobs) expect((await api.uploadBlob('race/busy', b)).status).toBe(201);
    await blobDue(img.layers[0].digest);
    // Hold the blob the way a push in progress does.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const pushing = parts.db.transaction(async (tx) => {
      await meta.lockBlob(tx, img.layers[0].digest);
      locked();
      await held;
    });
    await isLocked;
    const started = Date.now();
    const before = gc.counters.postponed.busy;
    await gc.runUntilIdle();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(gc.counters.postponed.busy).toBe(before + 1);
    expect(await blobRow(img.layers[0].digest)).toBe(true);
    release();
    await pushing;
    expect((await api.putManifest('race/busy', 'v1', img.manifest)).status).toBe(201);
  });
});
