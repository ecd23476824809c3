import { existsSync } from 'node:fs';
import { symlink } from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import type { HttpApp } from '@lading/http';
import { TestDeps, binaryParser, createTestDeps, makeBlob } from '@lading/testing';
import { createBlobService } from './blob-service';

describe('blob service on a full disk (a real ENOSPC)', () => {
  let deps: TestDeps;
  let app: HttpApp;

  beforeAll(async () => {
    deps = await createTestDeps();
    app = createBlobService(deps);
  });
  afterAll(async () => deps.close());

  it('answers a PATCH the disk has no room for 503 UNAVAILABLE, keeps the session where it was, and takes the chunk again once there is room', async () => {
    // /dev/full answers every write with ENOSPC: the session's upload file is made a link to it before the chunk.
    expect(existsSync('/dev/full')).toBe(true);
    const blob = makeBlob(300_000);
    const start = await request(app).post('/v2/full/app/blobs/uploads/').expect(202);
    const uploadFile = path.join(deps.storageRoot, 'blobs/uploads', String(start.headers['docker-upload-uuid']));
    await symlink('/dev/full', uploadFile);

    const full = await request(app).patch(start.headers.location).set('Content-Type', 'application/octet-stream').send(blob.data);
    expect(full.status).toBe(503);
    expect(full.headers['content-type']).toMatch(/^application\/json/);
    expect(full.body.errors[0].code).toBe('UNAVAILABLE');
    // Nothing half-stored: no upload file, and the session still at offset 0 for the client to retry.
    expect(existsSync(uploadFile)).toBe(false);
    const status = await request(app).get(start.headers.location);
    expect(status.status).toBe(204);
    expect(status.headers.range).toBe('0-0');

    const again = await request(app).patch(start.headers.location).set('Content-Type', 'application/octet-stream').send(blob.data);
    expect(again.status).toBe(202);
    await request(app).put(`${again.headers.location}?digest=${blob.digest}`).expect(201);
    const got = await request(app).get(`/v2/full/app/blobs/${blob.digest}`).buffer(true).parse(binaryParser);
    expect(Buffer.compare(got.body, blob.data)).toBe(0);
  });
});
