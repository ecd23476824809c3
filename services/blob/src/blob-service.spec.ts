import { createHash, randomBytes } from 'node:crypto';
import request from 'supertest';
import { type HttpApp, OBJECT_FETCH_HEADER } from '@lading/http';
import { blobKey, createMinioClient, createS3BlobStore } from '@lading/storage';
import { TestDeps, binaryParser, createTestDeps, infraSettings, makeBlob } from '@lading/testing';
import { createBlobService } from './blob-service';

describe('blob service', () => {
  let deps: TestDeps;
  let app: HttpApp;

  beforeAll(async () => {
    deps = await createTestDeps();
    app = createBlobService(deps);
  });
  afterAll(async () => deps.close());

  async function getBlob(repo: string, digest: string, headers: Record<string, string> = {}) {
    return request(app).get(`/v2/${repo}/blobs/${digest}`).set(headers).buffer(true).parse(binaryParser);
  }

  async function outboxTypes(): Promise<string[]> {
    return (await deps.db.query<{ type: string }>(`SELECT type FROM outbox ORDER BY repository, sequence`)).rows.map((r) => r.type);
  }

  it('stores a monolithic POST ?digest= upload and serves it back byte for byte with its digest headers', async () => {
    const blob = makeBlob(70_000);
    const put = await request(app).post(`/v2/mono/app/blobs/uploads/?digest=${blob.digest}`).set('Content-Type', 'application/octet-stream').send(blob.data);
    expect(put.status).toBe(201);
    expect(put.headers.location).toBe(`/v2/mono/app/blobs/${blob.digest}`);
    expect(put.headers['docker-content-digest']).toBe(blob.digest);
    const get = await getBlob('mono/app', blob.digest);
    expect(get.status).toBe(200);
    expect(Buffer.compare(get.body, blob.data)).toBe(0);
    expect(get.headers.etag).toBe(`"${blob.digest}"`);
    expect(get.headers['content-length']).toBe(String(blob.size));
    const head = await request(app).head(`/v2/mono/app/blobs/${blob.digest}`);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(blob.size));
    expect(head.headers['docker-content-digest']).toBe(blob.digest);
  });

  it('answers If-None-Match with the digest by 304', async () => {
    const blob = makeBlob('etag me');
    await request(app).post(`/v2/etag/blobs/uploads/?digest=${blob.digest}`).send(blob.data).expect(201);
    const res = await request(app).get(`/v2/etag/blobs/${blob.digest}`).set('If-None-Match', `"${blob.digest}"`);
    expect(res.status).toBe(304);
  });

  it('completes a POST then PUT-with-body upload', async () => {
    const blob = makeBlob(5000);
    const start = await request(app).post('/v2/twostep/blobs/uploads/').expect(202);
    expect(start.headers['docker-upload-uuid']).toMatch(/^[0-9a-f-]{36}$/);
    const done = await request(app).put(`${start.headers.location}?digest=${blob.digest}`).set('Content-Type', 'application/octet-stream').send(blob.data);
    expect(done.status).toBe(201);
    expect((await getBlob('twostep', blob.digest)).body.equals(blob.data)).toBe(true);
  });

  it('completes a streamed PATCH (no Content-Range) followed by an empty PUT, as docker and skopeo push', async () => {
    const blob = makeBlob(300_000);
    const start = await request(app).post('/v2/streamed/blobs/uploads/').expect(202);
    const patch = await request(app).patch(start.headers.location).set('Content-Type', 'application/octet-stream').send(blob.data);
    expect(patch.status).toBe(202);
    expect(patch.headers.range).toBe(`0-${blob.size - 1}`);
    await request(app).put(`${patch.headers.location}?digest=${blob.digest}`).expect(201);
    expect((await getBlob('streamed', blob.digest)).body.equals(blob.data)).toBe(true);
  });

  it('assembles chunks sent with Content-Range, reports progress on GET, and verifies sha512 digests too', async () => {
    const blob = makeBlob(9000, 'sha512');
    const start = await request(app).post('/v2/chunked/blobs/uploads/').expect(202);
    let location = start.headers.location;
    for (const [from, to] of [[0, 2999], [3000, 5999], [6000, 8999]]) {
      const res = await request(app)
        .patch(location)
        .set('Content-Type', 'application/octet-stream')
        .set('Content-Range', `${from}-${to}`)
        .send(blob.data.subarray(from, to + 1));
      expect(res.status).toBe(202);
      expect(res.headers.range).toBe(`0-${to}`);
      location = res.headers.location;
      const status = await request(app).get(location);
      expect(status.status).toBe(204);
      expect(status.headers.range).toBe(`0-${to}`);
    }
    const done = await request(app).put(`${location}?digest=${blob.digest}`);
    expect(done.status).toBe(201);
    expect(done.headers['docker-content-digest']).toBe(blob.digest);
    expect((await getBlob('chunked', blob.digest)).body.equals(blob.data)).toBe(true);
  });

  it('refuses an out-of-order or repeated chunk with 416 and the current Range, keeping the session usable', async () => {
    const blob = makeBlob(2000);
    const start = await request(app).post('/v2/order/blobs/uploads/').expect(202);
    const ahead = await request(app).patch(start.headers.location).set('Content-Range', '1000-1999').set('Content-Type', 'application/octet-stream').send(blob.data.subarray(1000));
    expect(ahead.status).toBe(416);
    const first = await request(app).patch(start.headers.location).set('Content-Range', '0-999').set('Content-Type', 'application/octet-stream').send(blob.data.subarray(0, 1000));
    expect(first.status).toBe(202);
    const again = await request(app).patch(first.headers.location).set('Content-Range', '0-999').set('Content-Type', 'application/octet-stream').send(blob.data.subarray(0, 1000));
    expect(again.status).toBe(416);
    expect(again.headers.range).toBe('0-999');
    await request(app).patch(first.headers.location).set('Content-Range', '1000-1999').set('Content-Type', 'application/octet-stream').send(blob.data.subarray(1000)).expect(202);
    await request(app).put(`${first.headers.location}?digest=${blob.digest}`).expect(201);
  });

  it('resumes an upload on another service instance: session state lives in the database and storage', async () => {
    const other = createBlobService(deps);
    const blob = makeBlob(4000);
    const start = await request(app).post('/v2/replicas/blobs/uploads/').expect(202);
    const first = await request(app).patch(start.headers.location).set('Content-Range', '0-1999').set('Content-Type', 'application/octet-stream').send(blob.data.subarray(0, 2000)).expect(202);
    const second = await request(other).patch(first.headers.location).set('Content-Range', '2000-3999').set('Content-Type', 'application/octet-stream').send(blob.data.subarray(2000)).expect(202);
    await request(app).put(`${second.headers.location}?digest=${blob.digest}`).expect(201);
    expect((await getBlob('replicas', blob.digest)).body.equals(blob.data)).toBe(true);
  });

  it('accepts a zero-length blob sent as a chunked PUT with no Content-Length, as oras sends it', async () => {
    const empty = makeBlob(Buffer.alloc(0));
    const start = await request(app).post('/v2/empty/blobs/uploads/').expect(202);
    const req = request(app).put(`${start.headers.location}?digest=${empty.digest}`).set('Transfer-Encoding', 'chunked');
    const res = await req.send('');
    expect(res.status).toBe(201);
    const head = await request(app).head(`/v2/empty/blobs/${empty.digest}`);
    expect(head.headers['content-length']).toBe('0');
  });

  it('refuses a completed upload whose digest does not match, and stores nothing', async () => {
    const blob = makeBlob(100);
    const wrong = makeBlob(101);
    const start = await request(app).post('/v2/mismatch/blobs/uploads/').expect(202);
    await request(app).patch(start.headers.location).set('Content-Type', 'application/octet-stream').send(blob.data).expect(202);
    const res = await request(app).put(`${start.headers.location}?digest=${wrong.digest}`);
    expect(res.status).toBe(400);
    expect(res.body.errors[0].code).toBe('DIGEST_INVALID');
    expect((await getBlob('mismatch', wrong.digest)).status).toBe(404);
    expect((await getBlob('mismatch', blob.digest)).status).toBe(404);
  });

  it('cancels an upload with DELETE; the session is then unknown', async () => {
    const start = await request(app).post('/v2/cancel/blobs/uploads/').expect(202);
    await request(app).delete(start.headers.location).expect(204);
    const res = await request(app).get(start.headers.location);
    expect(res.status).toBe(404);
    expect(res.body.errors[0].code).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('mounts a blob from another repository with 201, and without from when it exists anywhere', async () => {
    const blob = makeBlob(1234);
    await request(app).post(`/v2/source/blobs/uploads/?digest=${blob.digest}`).send(blob.data).expect(201);
    const mounted = await request(app).post(`/v2/target/blobs/uploads/?mount=${blob.digest}&from=source`);
    expect(mounted.status).toBe(201);
    expect(mounted.headers['docker-content-digest']).toBe(blob.digest);
    expect((await getBlob('target', blob.digest)).body.equals(blob.data)).toBe(true);
    const automatic = await request(app).post(`/v2/elsewhere/blobs/uploads/?mount=${blob.digest}`);
    expect(automatic.status).toBe(201);
    expect(await outboxTypes()).toContain('io.lading.blob.mounted');
  });

  it('falls back to an upload session when the mounted blob is not in the source repository', async () => {
    const blob = makeBlob(77);
    const res = await request(app).post(`/v2/target2/blobs/uploads/?mount=${blob.digest}&from=source`);
    expect(res.status).toBe(202);
    expect(res.headers.location).toMatch(/^\/v2\/target2\/blobs\/uploads\//);
  });

  it('serves byte ranges with 206 and Content-Range, and 416 for unsatisfiable ones', async () => {
    const blob = makeBlob(2048);
    await request(app).post(`/v2/ranges/blobs/uploads/?digest=${blob.digest}`).send(blob.data).expect(201);
    const cases: Array<[string, number, number]> = [
      ['bytes=500-1499', 500, 1499],
      ['bytes=500-', 500, 2047],
      ['bytes=-500', 1548, 2047],
      ['bytes=2000-5000', 2000, 2047],
    ];
    for (const [range, start, end] of cases) {
      const res = await getBlob('ranges', blob.digest, { Range: range });
      expect(res.status).toBe(206);
      expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/2048`);
      expect(res.body.equals(blob.data.subarray(start, end + 1))).toBe(true);
    }
    const bad = await getBlob('ranges', blob.digest, { Range: 'bytes=5000-10000' });
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe('bytes */2048');
  });

  it('deletes a blob link with 202; the blob is then unknown in that repository only', async () => {
    const blob = makeBlob(99);
    await request(app).post(`/v2/del/a/blobs/uploads/?digest=${blob.digest}`).send(blob.data).expect(201);
    await request(app).post(`/v2/del/b/blobs/uploads/?mount=${blob.digest}&from=del/a`).expect(201);
    await request(app).delete(`/v2/del/a/blobs/${blob.digest}`).expect(202);
    expect((await getBlob('del/a', blob.digest)).status).toBe(404);
    expect((await getBlob('del/b', blob.digest)).status).toBe(200);
    const queued = await deps.db.query(`SELECT reason FROM gc_blob_review_queue WHERE digest = $1`, [blob.digest]);
    expect(queued.rows).toEqual([{ reason: 'unlinked from repository' }]);
  });

  it('writes blob.uploaded with the digest and size to the outbox in the upload transaction', async () => {
    const blob = makeBlob(321);
    await request(app).post(`/v2/events/blobs/uploads/?digest=${blob.digest}`).set('User-Agent', 'jest-client').send(blob.data).expect(201);
    const rows = await deps.db.query<{ event: { type: string; subject: string; data: { digest: string; size: number; request: { useragent: string } } } }>(
      `SELECT event FROM outbox WHERE repository = 'events' ORDER BY sequence`,
    );
    const types = rows.rows.map((r) => r.event.type);
    expect(types).toEqual(['io.lading.repository.created', 'io.lading.blob.uploaded']);
    const uploaded = rows.rows[1].event;
    expect(uploaded.subject).toBe(`events@${blob.digest}`);
    expect(uploaded.data.size).toBe(321);
    expect(uploaded.data.request.useragent).toBe('jest-client');
  });

  it('hashes while streaming: a 24 MB streamed PATCH digests identically to node:crypto', async () => {
    const piece = Buffer.alloc(1024 * 1024, 7);
    const hash = createHash('sha256');
    for (let i = 0; i < 24; i++) hash.update(piece);
    const digest = `sha256:${hash.digest('hex')}`;
    const start = await request(app).post('/v2/large/blobs/uploads/').expect(202);
    const req = request(app).patch(start.headers.location).set('Content-Type', 'application/octet-stream');
    for (let i = 0; i < 24; i++) req.write(piece);
    const patched = await req;
    expect(patched.status).toBe(202);
    await request(app).put(`${patched.headers.location}?digest=${digest}`).expect(201);
  });
});

describe('blob service with deletes disabled', () => {
  it('answers DELETE of a blob with 405 UNSUPPORTED and keeps the blob', async () => {
    const deps = await createTestDeps({ registry: { deleteEnabled: false } });
    const app = createBlobService(deps);
    const blob = makeBlob(10);
    await request(app).post(`/v2/keep/blobs/uploads/?digest=${blob.digest}`).send(blob.data).expect(201);
    const res = await request(app).delete(`/v2/keep/blobs/${blob.digest}`);
    expect(res.status).toBe(405);
    expect(res.body.errors[0].code).toBe('UNSUPPORTED');
    expect((await request(app).head(`/v2/keep/blobs/${blob.digest}`)).status).toBe(200);
    await deps.close();
  });
});

describe('blob service on S3 (distributed mode)', () => {
  it('answers a full GET with a 307 to a presigned URL serving the bytes, and serves Range requests itself', async () => {
    const infra = infraSettings();
    const deps = await createTestDeps({ storage: { redirect: true } });
    const store = await createS3BlobStore({ ...infra.storage, bucket: `lading-test-${randomBytes(5).toString('hex')}` });
    const app = createBlobService({ ...deps, store });
    const blob = makeBlob(10_000);
    await request(app).post(`/v2/redirected/blobs/uploads/?digest=${blob.digest}`).send(blob.data).expect(201);
    const get = await request(app).get(`/v2/redirected/blobs/${blob.digest}`).redirects(0);
    expect(get.status).toBe(307);
    const fetched = await fetch(get.headers.location);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(blob.data)).toBe(true);
    const head = await request(app).head(`/v2/redirected/blobs/${blob.digest}`);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('10000');
    const ranged = await request(app).get(`/v2/redirected/blobs/${blob.digest}`).set('Range', 'bytes=0-99').buffer(true).parse(binaryParser);
    expect(ranged.status).toBe(206);
    expect((ranged.body as Buffer).equals(blob.data.subarray(0, 100))).toBe(true);
    await store.delete(blobKey(blob.digest));
    await deps.close();
  });

  it('stores a whole-body PUT at the blob key only when its digest matches, and a wrong one leaves no object and the session usable', async () => {
    const infra = infraSettings();
    const deps = await createTestDeps();
    const bucket = `lading-test-${randomBytes(5).toString('hex')}`;
    const store = await createS3BlobStore({ ...infra.storage, bucket, partSize: 5 * 1024 * 1024 });
    const app = createBlobService({ ...deps, store });
    const blob = makeBlob(12 * 1024 * 1024); // three parts of a multipart upload
    const wrong = makeBlob(16);
    const started = await request(app).post('/v2/direct/blobs/uploads/').expect(202);
    const refused = await request(app).put(`${started.headers.location}${started.headers.location.includes('?') ? '&' : '?'}digest=${wrong.digest}`).set('Content-Type', 'application/octet-stream').send(blob.data);
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0].code).toBe('DIGEST_INVALID');
    expect(await store.stat(blobKey(wrong.digest))).toBeNull();
    expect(await store.stat(blobKey(blob.digest))).toBeNull();
    const put = await request(app).put(`${started.headers.location}${started.headers.location.includes('?') ? '&' : '?'}digest=${blob.digest}`).set('Content-Type', 'application/octet-stream').send(blob.data);
    expect(put.status).toBe(201);
    expect(await store.stat(blobKey(blob.digest))).toEqual({ size: blob.size });
    const read: Buffer[] = [];
    for await (const chunk of await store.read(blobKey(blob.digest))) read.push(chunk as Buffer);
    expect(Buffer.concat(read).equals(blob.data)).toBe(true);
    await store.delete(blobKey(blob.digest));
    await createMinioClient(infra.storage).removeBucket(bucket);
    await deps.close();
  });

  it("with redirects off, streams a GET itself and answers a gateway's offer to fetch with a presigned URL and the blob's headers", async () => {
    const infra = infraSettings();
    const deps = await createTestDeps({ storage: { redirect: false } });
    const bucket = `lading-test-${randomBytes(5).toString('hex')}`;
    const store = await createS3BlobStore({ ...infra.storage, bucket });
    const app = createBlobService({ ...deps, store });
    const blob = makeBlob(10_000);
    await request(app).post(`/v2/fetched/blobs/uploads/?digest=${blob.digest}`).send(blob.data).expect(201);
    const streamed = await request(app).get(`/v2/fetched/blobs/${blob.digest}`).redirects(0).buffer(true).parse(binaryParser);
    expect(streamed.status).toBe(200);
    expect((streamed.body as Buffer).equals(blob.data)).toBe(true);
    const offered = await request(app).get(`/v2/fetched/blobs/${blob.digest}`).set(OBJECT_FETCH_HEADER, '1').redirects(0);
    expect(offered.status).toBe(307);
    expect(offered.headers[OBJECT_FETCH_HEADER]).toBe('1');
    expect(offered.headers['docker-content-digest']).toBe(blob.digest);
    const fetched = await fetch(offered.headers.location);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(blob.data)).toBe(true);
    // A range is served by the replica itself, offer or not.
    const ranged = await request(app).get(`/v2/fetched/blobs/${blob.digest}`).set(OBJECT_FETCH_HEADER, '1').set('Range', 'bytes=0-99').buffer(true).parse(binaryParser);
    expect(ranged.status).toBe(206);
    await store.delete(blobKey(blob.digest));
    await createMinioClient(infra.storage).removeBucket(bucket);
    await deps.close();
  });
});
