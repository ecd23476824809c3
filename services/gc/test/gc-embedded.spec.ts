/**
 * The collector runs in the embedded mode too: one process, PGlite and the filesystem, woken by the in-process
 * bus. With a short review delay an untagged image goes, blobs and objects included, while a tagged one stays.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { parseConfig } from '@lading/config';
import { EmbeddedRegistry, createEmbeddedRegistry } from '@lading/embedded';
import { blobKey } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
import { imageManifest, makeBlob } from '@lading/testing';

describe('garbage collection in the embedded registry', () => {
  let dir: string;
  let registry: EmbeddedRegistry;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-gc-embedded-'));
    const config = parseConfig({ data: { dir }, gc: { reviewDelay: '500ms', allowShortDelay: true }, log: { level: 'silent', access: false } });
    registry = await createEmbeddedRegistry(config, createLogger({ service: 'test', level: 'silent' }));
  });
  afterAll(async () => {
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Pushes an image by tag, or by digest only when `tag` is null. */
  async function push(repository: string, tag: string | null) {
    const config = makeBlob(`{"os":"linux","n":${Math.random()}}`);
    const layer = makeBlob(1024);
    const manifest = imageManifest(config, [layer]);
    for (const blob of [config, layer]) {
      await request(registry.app).post(`/v2/${repository}/blobs/uploads/?digest=${blob.digest}`).set('Content-Type', 'application/octet-stream').send(blob.data).expect(201);
    }
    await request(registry.app).put(`/v2/${repository}/manifests/${tag ?? manifest.digest}`).set('Content-Type', manifest.mediaType).send(manifest.body.toString()).expect(201);
    return { manifest, layer };
  }

  it('deletes an untagged image within a few review delays and keeps a tagged one', async () => {
    const kept = await push('emb/app', 'v1');
    const gone = await push('emb/app', null);
    const started = Date.now();
    while (Date.now() - started < 40_000 && (await request(registry.app).get(`/v2/emb/app/blobs/${gone.layer.digest}`)).status !== 404) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await request(registry.app).get(`/v2/emb/app/manifests/${gone.manifest.digest}`)).status).toBe(404);
    expect((await request(registry.app).get(`/v2/emb/app/blobs/${gone.layer.digest}`)).status).toBe(404);
    expect(await registry.store.stat(blobKey(gone.layer.digest))).toBeNull();
    expect((await request(registry.app).get(`/v2/emb/app/manifests/v1`)).status).toBe(200);
    expect((await request(registry.app).get(`/v2/emb/app/blobs/${kept.layer.digest}`)).status).toBe(200);
    expect(registry.gc.counters.deleted.manifests).toBe(1);
  }, 60_000);
});
