import request from 'supertest';
import type { HttpApp } from '@lading/http';
import { TestBlob, TestDeps, TestManifest, binaryParser, createTestDeps, imageIndex, imageManifest, makeBlob, makeManifest, seedBlobs as seedContent, seedImage } from '@lading/testing';
import { createManifestService } from './manifest-service';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

describe('manifest service', () => {
  let deps: TestDeps;
  let app: HttpApp;

  beforeAll(async () => {
    deps = await createTestDeps();
    app = createManifestService(deps);
  });
  afterAll(async () => deps.close());

  /** Stores blobs the way a completed upload does (the blob service's job, not under test here). */
  const seedBlobs = (repository: string, blobs: TestBlob[]) => seedContent(deps, repository, blobs);
  const image = (repository: string, extra: Record<string, unknown> = {}): Promise<TestManifest> => seedImage(deps, repository, extra);

  // Bodies go as strings: superagent would JSON-encode a Buffer sent with a +json content type.
  function put(repository: string, reference: string, manifest: TestManifest) {
    return request(app).put(`/v2/${repository}/manifests/${reference}`).set('Content-Type', manifest.mediaType).send(manifest.body.toString());
  }

  it('stores a manifest pushed by tag and serves it by tag and by digest with its media type and digest', async () => {
    const m = await image('team/app');
    const res = await put('team/app', 'v1', m);
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`/v2/team/app/manifests/${m.digest}`);
    expect(res.headers['docker-content-digest']).toBe(m.digest);
    for (const ref of ['v1', m.digest]) {
      const get = await request(app).get(`/v2/team/app/manifests/${ref}`).set('Accept', OCI_MANIFEST).buffer(true).parse(binaryParser);
      expect(get.status).toBe(200);
      expect(get.headers['content-type']).toBe(OCI_MANIFEST);
      expect(get.headers['docker-content-digest']).toBe(m.digest);
      expect(Buffer.compare(get.body as Buffer, m.body)).toBe(0);
    }
    const head = await request(app).head(`/v2/team/app/manifests/v1`);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(m.body.length));
  });

  it('counts a read the gateway made for several clients as that many pulls in the audit', async () => {
    const counted: Array<{ repository: string; count: number | undefined }> = [];
    const audited = createManifestService({ ...deps, pullAudit: { note: (_principal, repository, count) => void counted.push({ repository, count }) } });
    const m = await image('team/audited');
    expect((await request(audited).put('/v2/team/audited/manifests/v1').set('Content-Type', m.mediaType).send(m.body.toString())).status).toBe(201);
    expect((await request(audited).head('/v2/team/audited/manifests/v1').set('X-Lading-Pulls', '12')).status).toBe(200);
    expect((await request(audited).get(`/v2/team/audited/manifests/${m.digest}`).set('X-Lading-Pulls', '0')).status).toBe(200);
    expect((await request(audited).get('/v2/team/audited/manifests/v1')).status).toBe(200);
    expect(counted).toEqual([
      { repository: 'team/audited', count: 12 },
      { repository: 'team/audited', count: 0 },
      { repository: 'team/audited', count: 1 },
    ]);
  });

  it('answers If-None-Match with the digest by 304', async () => {
    const m = await image('etag');
    await put('etag', 'latest', m).expect(201);
    expect((await request(app).get('/v2/etag/manifests/latest').set('If-None-Match', `"${m.digest}"`)).status).toBe(304);
  });

  it('answers 404 MANIFEST_UNKNOWN when the Accept header excludes the stored media type, and serves it to */*', async () => {
    const m = await image('negotiate');
    await put('negotiate', 'v1', m).expect(201);
    const refused = await request(app).get('/v2/negotiate/manifests/v1').set('Accept', 'application/vnd.docker.distribution.manifest.v2+json');
    expect(refused.status).toBe(404);
    expect(refused.body.errors[0].code).toBe('MANIFEST_UNKNOWN');
    expect((await request(app).get('/v2/negotiate/manifests/v1').set('Accept', '*/*')).status).toBe(200);
  });

  it('refuses a manifest whose blobs are not in the repository with MANIFEST_BLOB_UNKNOWN and stores nothing', async () => {
    const config = makeBlob('{}');
    const layer = makeBlob(64);
    await seedBlobs('partial', [config]);
    const m = imageManifest(config, [layer]);
    const res = await put('partial', 'v1', m);
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toMatchObject({ code: 'MANIFEST_BLOB_UNKNOWN', detail: { digest: layer.digest } });
    expect((await request(app).get(`/v2/partial/manifests/${m.digest}`)).status).toBe(404);
    expect((await request(app).get('/v2/partial/tags/list')).body.tags).toEqual([]);
  });

  it('stores an index whose children exist and refuses one with an unknown child', async () => {
    const a = await image('multi');
    const b = await image('multi');
    await put('multi', a.digest, a).expect(201);
    await put('multi', b.digest, b).expect(201);
    const index = imageIndex([a, b]);
    const ok = await put('multi', 'latest', index);
    expect(ok.status).toBe(201);
    const got = await request(app).get('/v2/multi/manifests/latest').set('Accept', OCI_INDEX);
    expect(got.headers['content-type']).toBe(OCI_INDEX);
    const orphan = imageIndex([a, makeManifest({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'a/b', digest: makeBlob('x').digest, size: 1 }, layers: [] })]);
    const res = await put('multi', 'broken', orphan);
    expect(res.status).toBe(400);
    expect(res.body.errors[0].code).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('tags a manifest pushed by digest with every ?tag= and answers one OCI-Tag header per tag', async () => {
    const m = await image('multitag');
    const res = await request(app).put(`/v2/multitag/manifests/${m.digest}?tag=a&tag=b`).set('Content-Type', OCI_MANIFEST).send(m.body.toString());
    expect(res.status).toBe(201);
    expect(res.headers['oci-tag']).toBe('a, b');
    expect((await request(app).get('/v2/multitag/tags/list')).body).toEqual({ name: 'multitag', tags: ['a', 'b'] });
  });

  it('refuses a manifest pushed by a digest that is not its own with DIGEST_INVALID', async () => {
    const m = await image('wrongdigest');
    const res = await put('wrongdigest', makeBlob('other').digest, m);
    expect(res.status).toBe(400);
    expect(res.body.errors[0].code).toBe('DIGEST_INVALID');
  });

  it('computes a sha512 digest for a manifest pushed by a sha512 reference', async () => {
    const m = await image('sha512');
    const m512 = makeManifest(m.doc, 'sha512');
    const res = await put('sha512', m512.digest, m512);
    expect(res.status).toBe(201);
    expect(res.headers['docker-content-digest']).toBe(m512.digest);
    expect((await request(app).get(`/v2/sha512/manifests/${m512.digest}`)).status).toBe(200);
  });

  it('lists referrers of a subject, filters by artifactType with OCI-Filters-Applied, and answers OCI-Subject on push', async () => {
    const subject = await image('refs');
    await put('refs', 'v1', subject).expect(201);
    const subjectDescriptor = { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.body.length };
    const sbom = await image('refs', { artifactType: 'application/vnd.example.sbom', subject: subjectDescriptor, annotations: { kind: 'sbom' } });
    const sig = await image('refs', { artifactType: 'application/vnd.example.signature', subject: subjectDescriptor });
    const pushed = await put('refs', sbom.digest, sbom);
    expect(pushed.headers['oci-subject']).toBe(subject.digest);
    await put('refs', sig.digest, sig).expect(201);
    const all = await request(app).get(`/v2/refs/referrers/${subject.digest}`);
    expect(all.status).toBe(200);
    expect(all.headers['content-type']).toBe(OCI_INDEX);
    expect(all.body.manifests.map((d: { digest: string }) => d.digest).sort()).toEqual([sbom.digest, sig.digest].sort());
    expect(all.body.manifests.find((d: { digest: string }) => d.digest === sbom.digest)).toMatchObject({ artifactType: 'application/vnd.example.sbom', annotations: { kind: 'sbom' } });
    const filtered = await request(app).get(`/v2/refs/referrers/${subject.digest}?artifactType=application/vnd.example.signature`);
    expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
    expect(filtered.body.manifests.map((d: { digest: string }) => d.digest)).toEqual([sig.digest]);
    const none = await request(app).get(`/v2/refs/referrers/${makeBlob('nothing').digest}`);
    expect(none.status).toBe(200);
    expect(none.body.manifests).toEqual([]);
  });

  it('lists tags in byte order with n/last pagination and a Link header to the next page', async () => {
    const m = await image('paged');
    for (const tag of ['b', 'a', 'C', 'v1.10', 'v1.2']) await put('paged', tag, m).expect(201);
    const all = await request(app).get('/v2/paged/tags/list');
    expect(all.body.tags).toEqual(['C', 'a', 'b', 'v1.10', 'v1.2']);
    const first = await request(app).get('/v2/paged/tags/list?n=2');
    expect(first.body.tags).toEqual(['C', 'a']);
    expect(first.headers.link).toBe('</v2/paged/tags/list?n=2&last=a>; rel="next"');
    const second = await request(app).get('/v2/paged/tags/list?n=2&last=a');
    expect(second.body.tags).toEqual(['b', 'v1.10']);
    const last = await request(app).get('/v2/paged/tags/list?n=2&last=v1.10');
    expect(last.body.tags).toEqual(['v1.2']);
    expect(last.headers.link).toBeUndefined();
    expect((await request(app).get('/v2/never-pushed/tags/list')).body.errors[0].code).toBe('NAME_UNKNOWN');
  });

  it('lists repositories in the catalog with pagination', async () => {
    const page = await request(app).get('/v2/_catalog?n=3');
    expect(page.status).toBe(200);
    expect(page.body.repositories).toHaveLength(3);
    expect(page.headers.link).toMatch(/^<\/v2\/_catalog\?n=3&last=[^>]+>; rel="next"$/);
    const all = await request(app).get('/v2/_catalog');
    expect(all.body.repositories).toEqual([...all.body.repositories].sort());
    expect(all.body.repositories).toContain('team/app');
  });

  it('deletes a tag without deleting the manifest, and a manifest with its tags', async () => {
    const m = await image('deletes');
    await put('deletes', 'one', m).expect(201);
    await put('deletes', 'two', m).expect(201);
    await request(app).delete('/v2/deletes/manifests/one').expect(202);
    expect((await request(app).get('/v2/deletes/manifests/one')).status).toBe(404);
    expect((await request(app).get(`/v2/deletes/manifests/${m.digest}`)).status).toBe(200);
    await request(app).delete(`/v2/deletes/manifests/${m.digest}`).expect(202);
    expect((await request(app).get('/v2/deletes/manifests/two')).status).toBe(404);
    expect((await request(app).get(`/v2/deletes/manifests/${m.digest}`)).status).toBe(404);
    expect((await request(app).delete(`/v2/deletes/manifests/${m.digest}`)).status).toBe(404);
    const queued = await deps.db.query(`SELECT count(*)::int AS n FROM gc_blob_review_queue WHERE reason = 'manifest deleted'`);
    expect(queued.rows[0]).toEqual({ n: 2 });
  });

  it('records a tag move as tag.updated with the previous digest and queues the old manifest for review', async () => {
    const first = await image('moves');
    const second = await image('moves');
    await put('moves', 'latest', first).expect(201);
    await put('moves', 'latest', second).expect(201);
    const events = await deps.db.query<{ event: { type: string; data: { tag: string; digest: string; previousDigest: string | null } } }>(
      `SELECT event FROM outbox WHERE repository = 'moves' AND type = 'io.lading.tag.updated' ORDER BY sequence`,
    );
    expect(events.rows.map((r) => r.event.data)).toMatchObject([
      { tag: 'latest', digest: first.digest, previousDigest: null },
      { tag: 'latest', digest: second.digest, previousDigest: first.digest },
    ]);
    const review = await deps.db.query(`SELECT reason FROM gc_manifest_review_queue WHERE digest = $1`, [first.digest]);
    expect(review.rows).toEqual([{ reason: 'tag moved' }]);
  });

  it('writes manifest.pushed with its references once, not again when the same manifest is pushed twice', async () => {
    const m = await image('idempotent');
    await put('idempotent', 'x', m).expect(201);
    await put('idempotent', 'x', m).expect(201);
    const rows = await deps.db.query<{ event: { data: { references: unknown[]; digest: string } } }>(
      `SELECT event FROM outbox WHERE repository = 'idempotent' AND type = 'io.lading.manifest.pushed'`,
    );
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0].event.data.digest).toBe(m.digest);
    expect(rows.rows[0].event.data.references).toHaveLength(2);
  });
});

describe('manifest service with deletes disabled', () => {
  it('answers DELETE with 405 UNSUPPORTED', async () => {
    const deps = await createTestDeps({ registry: { deleteEnabled: false } });
    const app = createManifestService(deps);
    const res = await request(app).delete(`/v2/x/manifests/latest`);
    expect(res.status).toBe(405);
    expect(res.body.errors[0].code).toBe('UNSUPPORTED');
    await deps.close();
  });
});
