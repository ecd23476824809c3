/**
 * The collector's decisions, end to end on PGlite and the filesystem: content pushed through the real API, the
 * review delay skipped by moving the queues' clocks back, then the real worker. Each kind of reference keeps what
 * it should; everything else goes, metadata first, with its events; a re-upload racing the object deletion
 * survives; failed storage deletions are retried from their tombstone.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { LadingEvent } from '@lading/events';
import { GcHooks, GcWorker, createGcWorker, planCollection, renderPlan } from '../src';
import * as meta from '@lading/metadata';
import { BlobStore, blobKey } from '@lading/storage';
import { TestRegistryMetrics, startTestRegistryMetrics } from '@lading/telemetry/testing';
import { TestBlob, TestDeps, createTestDeps, imageIndex, imageManifest, makeBlob, makeGcQueuesDue, makeManifest } from '@lading/testing';
import { RegistryClient, RegistryUnderTest, startRegistry } from './registry-under-test';

const REFERRER_TYPE = 'application/vnd.example.sbom.v1+json';

describe('garbage collection on PGlite (API level)', () => {
  let deps: TestDeps;
  let reg: RegistryUnderTest;
  let api: RegistryClient;
  let gc: GcWorker;
  /** The metrics the collector reports into, scraped as the process's debug port would serve them. */
  let telemetry: TestRegistryMetrics;
  const events: LadingEvent[] = [];

  beforeAll(async () => {
    deps = await createTestDeps({
      gc: {
        reviewDelay: '1h',
        uploadTtl: '1h',
        policies: [
          { namespace: 'keepers', deleteUntagged: false },
          { namespace: 'retained', keepLast: 2 },
          { namespace: 'retained/preview', keepLast: 1, dryRun: true },
        ],
      },
    });
    reg = await startRegistry(deps);
    api = reg.client;
    telemetry = startTestRegistryMetrics();
    gc = createGcWorker({ ...deps, metrics: telemetry.metrics });
    await deps.bus.subscribe((e) => {
      events.push(e);
    });
  });
  afterAll(async () => {
    await reg.close();
    await deps.close();
    await telemetry.shutdown();
  });

  /** Moves the collector's clock on: its queues act now (@lading/testing). */
  async function makeDue(): Promise<void> {
    await makeGcQueuesDue(deps.db);
  }

  /** Runs the collector through `rounds` review delays. */
  async function collect(worker: GcWorker = gc, rounds = 4): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      await makeDue();
      await worker.runUntilIdle();
    }
  }

  async function blobState(digest: string): Promise<{ row: boolean; object: boolean }> {
    const row = (await deps.db.query(`SELECT 1 FROM blobs WHERE digest = $1`, [digest])).rows.length > 0;
    return { row, object: (await deps.store.stat(blobKey(digest))) !== null };
  }

  async function manifestThere(repository: string, digest: string): Promise<boolean> {
    return (await meta.findManifestByDigest(deps.db, repository, digest)) !== null;
  }

  function image(layers: TestBlob[] = [makeBlob(256)]) {
    const config = makeBlob(`{"architecture":"amd64","os":"linux","n":"${randomBytes(8).toString('hex')}"}`);
    return { config, layers, manifest: imageManifest(config, layers), blobs: [config, ...layers] };
  }

  async function push(repository: string, reference: string, img: ReturnType<typeof image>): Promise<void> {
    const res = await api.pushImage(repository, reference, img.manifest, img.blobs);
    expect(res.status).toBe(201);
  }

  it('deletes an untagged image: the manifest after the delay, then its blobs and their objects, with events', async () => {
    const img = image();
    await push('plain/untagged', img.manifest.digest, img);
    await collect();
    expect(await manifestThere('plain/untagged', img.manifest.digest)).toBe(false);
    for (const b of img.blobs) expect(await blobState(b.digest)).toEqual({ row: false, object: false });
    expect(await deps.db.query(`SELECT * FROM gc_tombstones`)).toMatchObject({ rows: [] });
    await deps.flushEvents();
    await new Promise((r) => setTimeout(r, 20));
    const mine = events.filter((e) => e.data.repository === 'plain/untagged' && e.data.actor.name === 'lading-gc');
    expect(mine.map((e) => e.type).sort()).toEqual(['io.lading.blob.deleted', 'io.lading.blob.deleted', 'io.lading.manifest.deleted']);
    expect(gc.counters.bytesFreed).toBeGreaterThanOrEqual(img.blobs.reduce((s, b) => s + b.size, 0));
  });

  it('keeps a tagged image and everything it references', async () => {
    const img = image();
    await push('plain/tagged', 'v1', img);
    await collect();
    expect(await manifestThere('plain/tagged', img.manifest.digest)).toBe(true);
    for (const b of img.blobs) expect(await blobState(b.digest)).toEqual({ row: true, object: true });
    expect((await api.getBlob('plain/tagged', img.layers[0].digest)).status).toBe(200);
  });

  it('deletes what a moved tag left behind, keeping layers the new image shares', async () => {
    const shared = makeBlob(300);
    const onlyOld = makeBlob(301);
    const a = image([shared, onlyOld]);
    const b = image([shared]);
    await push('moves/app', 'latest', a);
    await push('moves/app', 'latest', b);
    await collect();
    expect(await manifestThere('moves/app', a.manifest.digest)).toBe(false);
    expect(await manifestThere('moves/app', b.manifest.digest)).toBe(true);
    expect(await blobState(onlyOld.digest)).toEqual({ row: false, object: false });
    expect(await blobState(shared.digest)).toEqual({ row: true, object: true });
    expect((await api.getBlob('moves/app', shared.digest)).status).toBe(200);
  });

  it('deletes a manifest whose only tag was deleted', async () => {
    const img = image();
    await push('deltag/app', 'v1', img);
    expect((await api.deleteManifest('deltag/app', 'v1')).status).toBe(202);
    await collect();
    expect(await manifestThere('deltag/app', img.manifest.digest)).toBe(false);
    expect(await blobState(img.layers[0].digest)).toEqual({ row: false, object: false });
  });

  it('keeps the children of a tagged index; deletes the index, then its children, then their blobs once untagged', async () => {
    const amd = image();
    const arm = image();
    for (const child of [amd, arm]) await push('multi/app', child.manifest.digest, child);
    const index = imageIndex([amd.manifest, arm.manifest]);
    expect((await api.putManifest('multi/app', 'v1', index)).status).toBe(201);
    await collect();
    for (const child of [amd, arm]) expect(await manifestThere('multi/app', child.manifest.digest)).toBe(true);
    expect((await api.deleteManifest('multi/app', 'v1')).status).toBe(202);
    await collect(gc, 5);
    expect(await manifestThere('multi/app', index.digest)).toBe(false);
    for (const child of [amd, arm]) {
      expect(await manifestThere('multi/app', child.manifest.digest)).toBe(false);
      expect(await blobState(child.layers[0].digest)).toEqual({ row: false, object: false });
    }
  });

  it('keeps referrers of a live subject; deletes them once the subject is gone', async () => {
    const subject = image();
    await push('refs/app', 'v1', subject);
    const sbom = makeBlob('{"sbom":true}');
    const empty = makeBlob('{}');
    expect((await api.uploadBlob('refs/app', sbom)).status).toBe(201);
    expect((await api.uploadBlob('refs/app', empty)).status).toBe(201);
    const referrer = makeManifest({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: REFERRER_TYPE,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size },
      layers: [{ mediaType: REFERRER_TYPE, digest: sbom.digest, size: sbom.size }],
      subject: { mediaType: subject.manifest.mediaType, digest: subject.manifest.digest, size: subject.manifest.body.length },
    });
    expect((await api.putManifest('refs/app', referrer.digest, referrer)).status).toBe(201);
    await collect();
    expect(await manifestThere('refs/app', referrer.digest)).toBe(true);
    // A DELETE of the subject by digest: the sweep finds its orphaned referrer.
    expect((await api.deleteManifest('refs/app', subject.manifest.digest)).status).toBe(202);
    await gc.sweep();
    await collect();
    expect(await manifestThere('refs/app', referrer.digest)).toBe(false);
    expect(await blobState(sbom.digest)).toEqual({ row: false, object: false });
  });

  it('deletes a referrer whose subject never arrived', async () => {
    const empty = makeBlob('{}');
    const note = makeBlob(`{"note":"${randomBytes(4).toString('hex')}"}`);
    for (const b of [empty, note]) expect((await api.uploadBlob('refs/orphan', b)).status).toBe(201);
    const referrer = makeManifest({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: REFERRER_TYPE,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size },
      layers: [{ mediaType: REFERRER_TYPE, digest: note.digest, size: note.size }],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'ab'.repeat(32)}`, size: 100 },
    });
    expect((await api.putManifest('refs/orphan', referrer.digest, referrer)).status).toBe(201);
    await collect();
    expect(await manifestThere('refs/orphan', referrer.digest)).toBe(false);
  });

  it("keeps a blob another repository's manifest references, with every link", async () => {
    const layer = makeBlob(400);
    const a = image([layer]);
    const b = image([layer]);
    await push('share/a', 'v1', a);
    await push('share/b', b.manifest.digest, b);
    await collect();
    expect(await manifestThere('share/b', b.manifest.digest)).toBe(false);
    expect(await blobState(layer.digest)).toEqual({ row: true, object: true });
    expect((await api.headBlob('share/b', layer.digest)).status).toBe(200);
    expect((await api.getBlob('share/a', layer.digest)).status).toBe(200);
  });

  it('keeps an upload within its grace window (rescheduled to when the window ends), then deletes it', async () => {
    const blob = makeBlob(128);
    expect((await api.uploadBlob('dangling/app', blob)).status).toBe(201);
    await deps.db.query(`UPDATE gc_blob_review_queue SET review_after = now() - interval '1 second' WHERE digest = $1`, [blob.digest]);
    await gc.runUntilIdle();
    expect(await blobState(blob.digest)).toEqual({ row: true, object: true });
    const queued = await deps.db.query<{ in_ms: number }>(
      `SELECT EXTRACT(EPOCH FROM review_after - now()) * 1000 AS in_ms FROM gc_blob_review_queue WHERE digest = $1`,
      [blob.digest],
    );
    expect(Number(queued.rows[0].in_ms)).toBeGreaterThan(3_500_000);
    await collect();
    expect(await blobState(blob.digest)).toEqual({ row: false, object: false });
  });

  it("keeps untagged manifests in a namespace whose policy says so", async () => {
    const img = image();
    await push('keepers/app', img.manifest.digest, img);
    await collect();
    expect(await manifestThere('keepers/app', img.manifest.digest)).toBe(true);
    expect(await blobState(img.layers[0].digest)).toEqual({ row: true, object: true });
  });

  it('applies keep-last-N retention, and only reports under a dry-run policy', async () => {
    const pushed: string[] = [];
    for (const tag of ['t1', 't2', 't3']) {
      const img = image();
      await push('retained/app', tag, img);
      pushed.push(img.manifest.digest);
      await push('retained/preview/app', tag, image());
      await new Promise((r) => setTimeout(r, 5));
    }
    const plan = await planCollection(deps.db, gc.settings);
    expect(plan.items.filter((i) => i.kind === 'tag').map((i) => `${i.action} ${i.target}`).sort()).toEqual([
      'delete retained/app:t1',
      'report retained/preview/app:t1',
      'report retained/preview/app:t2',
    ]);
    await gc.sweep();
    await collect();
    const tags = await meta.listTags(deps.db, (await meta.findRepository(deps.db, 'retained/app'))!.id, null, 10);
    expect(tags).toEqual(['t2', 't3']);
    expect(await manifestThere('retained/app', pushed[0])).toBe(false);
    expect((await meta.listTags(deps.db, (await meta.findRepository(deps.db, 'retained/preview/app'))!.id, null, 10)).length).toBe(3);
    expect(gc.counters.retentionReported).toBe(2);
  });

  it('retries a failed object deletion from its tombstone, and never deletes metadata after the object', async () => {
    let failures = 1;
    const flaky: BlobStore = {
      ...deps.store,
      driverName: 'flaky',
      delete: async (key) => {
        if (failures-- > 0) throw Object.assign(new Error('storage unavailable'), { code: 'ECONNRESET' });
        return deps.store.delete(key);
      },
    };
    const worker = createGcWorker({ ...deps, store: flaky });
    const blob = makeBlob(200);
    expect((await api.uploadBlob('flaky/app', blob)).status).toBe(201);
    await collect(worker, 1);
    expect(await blobState(blob.digest)).toEqual({ row: false, object: true });
    const tomb = await deps.db.query<{ attempts: number; last_error: string }>(`SELECT attempts, last_error FROM gc_tombstones WHERE target = $1`, [blob.digest]);
    expect(tomb.rows[0]).toMatchObject({ attempts: 1 });
    expect(tomb.rows[0].last_error).toContain('storage unavailable');
    expect(worker.counters.storageErrors).toBe(1);
    await collect(worker, 1);
    expect(await blobState(blob.digest)).toEqual({ row: false, object: false });
    expect((await deps.db.query(`SELECT 1 FROM gc_tombstones WHERE target = $1`, [blob.digest])).rows).toHaveLength(0);
  });

  it('keeps the object of a blob re-uploaded between its metadata delete and its object delete', async () => {
    const blob = makeBlob(210);
    expect((await api.uploadBlob('reup/app', blob)).status).toBe(201);
    const hooks: GcHooks = {
      afterMetadataDelete: async () => {
        expect(await blobState(blob.digest)).toEqual({ row: false, object: true });
        expect((await api.uploadBlob('reup/app', blob)).status).toBe(201);
      },
    };
    await collect(createGcWorker({ ...deps, hooks }), 1);
    expect(await blobState(blob.digest)).toEqual({ row: true, object: true });
    const got = await api.getBlob('reup/app', blob.digest);
    expect(got.status).toBe(200);
    expect(createHash('sha256').update(got.body).digest('hex')).toBe(blob.digest.slice(7));
    expect((await deps.db.query(`SELECT 1 FROM gc_tombstones WHERE target = $1`, [blob.digest])).rows).toHaveLength(0);
  });

  it('keeps an object an upload committed (found already stored) before the collector got to it, until the upload records it', async () => {
    const blob = makeBlob(220);
    expect((await api.uploadBlob('pinned/app', blob)).status).toBe(201);
    // Delete only the metadata (the object deletion is held back), as if the collector died right after its commit.
    const stalled = createGcWorker({ ...deps, store: { ...deps.store, delete: async () => Promise.reject(new Error('held back')) } });
    await collect(stalled, 1);
    expect(await blobState(blob.digest)).toEqual({ row: false, object: true });
    // The re-upload's commit finds the object stored and drops its bytes; before it records the blob row, the
    // collector retries the object deletion: the pin makes it wait.
    let raced = false;
    const racing: BlobStore = {
      ...deps.store,
      commitUpload: async (id, key, size) => {
        await deps.store.commitUpload(id, key, size);
        if (key === blobKey(blob.digest) && !raced) {
          raced = true;
          await deps.db.query(`UPDATE gc_tombstones SET retry_after = now() - interval '1 second'`);
          await gc.runUntilIdle();
        }
      },
    };
    const racingRegistry = await startRegistry({ ...deps, store: racing });
    try {
      expect((await racingRegistry.client.uploadBlob('pinned/app', blob)).status).toBe(201);
    } finally {
      await racingRegistry.close();
    }
    expect(raced).toBe(true);
    expect(gc.counters.postponed.pinned).toBeGreaterThan(0);
    await deps.db.query(`UPDATE gc_tombstones SET retry_after = now() - interval '1 second'`);
    await gc.runUntilIdle();
    expect(await blobState(blob.digest)).toEqual({ row: true, object: true });
    expect((await deps.db.query(`SELECT 1 FROM gc_tombstones WHERE target = $1`, [blob.digest])).rows).toHaveLength(0);
    expect((await deps.db.query(`SELECT 1 FROM gc_blob_pins WHERE digest = $1`, [blob.digest])).rows).toHaveLength(0);
  });

  it('keeps a manifest whose payload it cannot parse', async () => {
    const repo = await deps.db.transaction((tx) => meta.ensureRepository(tx, 'broken/app'));
    const payload = Buffer.from('{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": 7}');
    const digest = `sha256:${createHash('sha256').update(payload).digest('hex')}`;
    await deps.db.transaction(async (tx) => {
      await meta.insertManifest(tx, {
        repositoryId: repo.id,
        digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: null,
        payload,
        subjectDigest: null,
        annotations: null,
        blobDigests: [],
        childDigests: [],
      });
      await meta.queueManifestReview(tx, repo.id, [digest], 'test', 0);
    });
    const before = gc.counters.unparseable;
    await collect(gc, 1);
    expect(await manifestThere('broken/app', digest)).toBe(true);
    expect(gc.counters.unparseable).toBe(before + 1);
  });

  it('explains in a dry run what it would delete and why, without changing anything', async () => {
    const img = image();
    await push('dry/app', img.manifest.digest, img);
    await makeDue();
    const before = await deps.db.query(`SELECT count(*)::int AS n FROM manifests`);
    const plan = await planCollection(deps.db, gc.settings);
    expect((await deps.db.query(`SELECT count(*)::int AS n FROM manifests`)).rows).toEqual(before.rows);
    const line = plan.items.find((i) => i.target === `dry/app@${img.manifest.digest}`);
    expect(line).toMatchObject({ kind: 'manifest', action: 'delete' });
    expect(line?.reason).toContain('untagged');
    // Its blobs would go one review delay after it (the upload links are already past theirs).
    const layer = plan.items.find((i) => i.target === img.layers[0].digest);
    expect(layer).toMatchObject({ kind: 'blob', action: 'later' });
    expect(layer?.reason).toContain('only manifests deleted before it reference it');
    const text = renderPlan(plan);
    expect(text).toContain(`DELETE manifest dry/app@${img.manifest.digest}`);
    expect(text).toMatch(/would delete now: \d+ tags, \d+ manifests/);
    const metrics = await telemetry.scrape();
    expect(metrics).toContain('lading_gc_queue_size{queue="manifest"}');
    expect(metrics).toMatch(/lading_gc_bytes_freed_total \d+/);
  });
});
