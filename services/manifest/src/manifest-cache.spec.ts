/**
 * The manifest caches obey deletes and tag moves: what the pull path caches is never served after the change that
 * made it wrong, whether the change came through this service (synchronous invalidation), from another writer that
 * announces it on the bus (the garbage collector), or raced a read that was still in flight.
 */
import { Readable } from 'node:stream';
import request from 'supertest';
import type { HttpApp } from '@lading/http';
import { EVENT_TYPES, appendEvent } from '@lading/events';
import type { Database } from '@lading/metadata';
import * as meta from '@lading/metadata';
import { blobKey } from '@lading/storage';
import { TestDeps, TestManifest, createTestDeps, imageManifest, makeBlob } from '@lading/testing';
import { createManifestService } from './manifest-service';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

describe('manifest caches', () => {
  let deps: TestDeps;
  let app: HttpApp;
  /** Reads of manifests by digest wait on this gate while it is set (to hold a read in flight). */
  let gate: Promise<void> | null = null;
  let readsByDigest = 0;

  beforeAll(async () => {
    deps = await createTestDeps();
    const counting: Database = Object.create(deps.db);
    counting.query = (async (sql: string, params?: unknown[]) => {
      if (sql.includes('FROM manifests m JOIN repositories r') && sql.includes('m.digest = $2') && !sql.startsWith('SELECT 1')) {
        readsByDigest++;
        const result = await deps.db.query(sql, params);
        if (gate) await gate;
        return result;
      }
      return deps.db.query(sql, params);
    }) as Database['query'];
    app = createManifestService({ ...deps, db: counting, invalidations: deps.bus });
  });
  afterAll(async () => deps.close());

  async function image(repository: string): Promise<TestManifest> {
    const config = makeBlob(`{"architecture":"amd64","os":"linux","n":${Math.random()}}`);
    const layer = makeBlob(256);
    for (const blob of [config, layer]) {
      const id = `seed-${Math.random().toString(16).slice(2)}`;
      await deps.store.writeUpload(id, 0, Readable.from([blob.data]));
      await deps.store.commitUpload(id, blobKey(blob.digest), blob.size);
    }
    await deps.db.transaction(async (tx) => {
      const repo = await meta.ensureRepository(tx, repository);
      for (const blob of [config, layer]) {
        await meta.insertBlob(tx, blob.digest, blob.size);
        await meta.linkBlob(tx, repo.id, blob.digest);
      }
    });
    return imageManifest(config, [layer]);
  }

  const put = (repository: string, reference: string, m: TestManifest) =>
    request(app).put(`/v2/${repository}/manifests/${reference}`).set('Content-Type', m.mediaType).send(m.body.toString());
  const get = (repository: string, reference: string) => request(app).get(`/v2/${repository}/manifests/${reference}`).set('Accept', OCI_MANIFEST);

  it('serves a manifest by digest from the cache after the first read, with immutable caching headers', async () => {
    const m = await image('cache/hit');
    expect((await put('cache/hit', 'v1', m)).status).toBe(201);
    const before = readsByDigest;
    for (let i = 0; i < 5; i++) {
      const res = await get('cache/hit', m.digest);
      expect(res.status).toBe(200);
      expect(res.headers['docker-content-digest']).toBe(m.digest);
      expect(res.headers['cache-control']).toBe('max-age=31536000, immutable');
      expect(res.headers['content-length']).toBe(String(m.body.length));
    }
    expect(readsByDigest - before).toBe(1);
    const head = await request(app).head(`/v2/cache/hit/manifests/${m.digest}`);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(m.body.length));
    expect(head.text ?? '').toBe('');
    expect((await get('cache/hit', m.digest).set('If-None-Match', `"${m.digest}"`)).status).toBe(304);
    expect((await get('cache/hit', m.digest).set('Accept', 'application/vnd.docker.distribution.manifest.v2+json')).status).toBe(404);
  });

  it('never serves a manifest deleted through the API from the cache, by digest or by its tag', async () => {
    const m = await image('cache/deleted');
    await put('cache/deleted', 'v1', m);
    expect((await get('cache/deleted', m.digest)).status).toBe(200);
    expect((await get('cache/deleted', 'v1')).status).toBe(200);
    expect((await request(app).delete(`/v2/cache/deleted/manifests/${m.digest}`)).status).toBe(202);
    const byDigest = await get('cache/deleted', m.digest);
    expect(byDigest.status).toBe(404);
    expect(byDigest.body.errors[0].code).toBe('MANIFEST_UNKNOWN');
    expect((await get('cache/deleted', 'v1')).status).toBe(404);
  });

  it('answers a moved tag with its new target at once, and a deleted tag with 404', async () => {
    const a = await image('cache/tags');
    const b = await image('cache/tags');
    await put('cache/tags', 'latest', a);
    expect((await get('cache/tags', 'latest')).headers['docker-content-digest']).toBe(a.digest);
    await put('cache/tags', 'latest', b);
    expect((await get('cache/tags', 'latest')).headers['docker-content-digest']).toBe(b.digest);
    expect((await request(app).delete('/v2/cache/tags/manifests/latest')).status).toBe(202);
    expect((await get('cache/tags', 'latest')).status).toBe(404);
    // The manifest itself is still there by digest.
    expect((await get('cache/tags', b.digest)).status).toBe(200);
  });

  it('forgets a manifest another writer deleted once its manifest.deleted event arrives on the bus', async () => {
    const m = await image('cache/gc');
    await put('cache/gc', m.digest, m);
    expect((await get('cache/gc', m.digest)).status).toBe(200);
    // The collector's delete: the row goes and the event is written in the same transaction, behind the service.
    await deps.db.transaction(async (tx) => {
      const repo = await meta.findRepository(tx, 'cache/gc');
      await tx.query('DELETE FROM manifests WHERE repository_id = $1 AND digest = $2', [repo!.id, m.digest]);
      await appendEvent(tx, deps.events, {
        type: EVENT_TYPES.manifestDeleted,
        repository: 'cache/gc',
        subject: `cache/gc@${m.digest}`,
        context: { actor: { name: 'gc', type: 'robot' }, request: null },
        data: { digest: m.digest, mediaType: m.mediaType, size: m.body.length },
      });
    });
    // Until the event arrives the process cannot know (the cache is what is under test here).
    expect((await get('cache/gc', m.digest)).status).toBe(200);
    await deps.flushEvents();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await get('cache/gc', m.digest)).status).toBe(404);
  });

  it('does not cache what a read fetched before a delete that finished while the read was in flight', async () => {
    const m = await image('cache/race');
    await put('cache/race', m.digest, m);
    const readsBefore = readsByDigest;
    let release!: () => void;
    gate = new Promise<void>((resolve) => (release = resolve));
    const inFlight = get('cache/race', m.digest).then((res) => res.status);
    // The read has fetched the row and waits at the gate; the delete commits and invalidates meanwhile.
    while (readsByDigest === readsBefore) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await request(app).delete(`/v2/cache/race/manifests/${m.digest}`)).status).toBe(202);
    gate = null;
    release();
    // It read before the delete, so its answer may be the old one; but it must not have stored it.
    expect(await inFlight).toBe(200);
    expect((await get('cache/race', m.digest)).status).toBe(404);
  });
});
