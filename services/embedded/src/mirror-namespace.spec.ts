/**
 * The `mirror` setting against a real CNCF Distribution v3 upstream: un-prefixed pulls (as dockerd's
 * registry-mirrors and containerd's hosts.toml send them) are answered from the mirror's proxy namespace, while
 * local repositories, pushes and names inside other namespaces are served as written.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type RegistryClient, createRegistryClient } from '@lading/client';
import { parseConfig } from '@lading/config';
import * as meta from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { type RunningDistribution, type TestBlob, type TestManifest, imageManifest, makeBlob, startDistribution } from '@lading/testing';
import { type EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';

const logger = createLogger({ service: 'test', level: 'silent' });

async function push(client: RegistryClient, repository: string, reference: string, manifest: TestManifest, blobs: TestBlob[]): Promise<void> {
  for (const blob of blobs) {
    if ((await client.headBlob(repository, blob.digest)).status !== 200) await client.pushBlobStream(repository, blob.digest, blob.size, blob.data);
  }
  expect((await client.putManifest(repository, reference, { mediaType: manifest.mediaType, body: manifest.body })).status).toBe(201);
}

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('mirror.namespace: un-prefixed pulls answered from a proxy namespace', () => {
  let distribution: RunningDistribution;
  let upstream: RegistryClient;
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  let url: string;
  let client: RegistryClient;

  const config = makeBlob('{"architecture":"amd64","os":"linux"}');
  const layer = makeBlob(200 * 1024 + 3);
  const image = imageManifest(config, [layer]);

  beforeAll(async () => {
    distribution = await startDistribution();
    upstream = createRegistryClient({ url: distribution.url });
    await push(upstream, 'library/app', 'v1', image, [config, layer]);
    dir = await mkdtemp(path.join(tmpdir(), 'lading-mirror-'));
    const settings = { proxies: [{ namespace: 'hub', upstream: distribution.url }], mirror: { namespace: 'hub' }, gc: { enabled: false } };
    registry = await createEmbeddedRegistry(parseConfig({ ...settings, data: { dir }, log: { level: 'silent', access: false } }), logger);
    server = registry.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client = createRegistryClient({ url, timeoutMs: 20_000 });
  }, 15 * 60_000);

  afterAll(async () => {
    await client?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await registry?.close();
    await upstream?.close();
    await distribution?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers /v2/library/app/... as hub/library/app, caching it there and creating no local library/app', async () => {
    const manifest = await client.getManifest('library/app', 'v1');
    expect(manifest.status).toBe(200);
    expect(manifest.headers['docker-content-digest']).toBe(image.digest);
    expect(manifest.body.equals(image.body)).toBe(true);
    for (const blob of [config, layer]) expect((await readAll(await client.openBlob('library/app', blob.digest))).equals(blob.data)).toBe(true);
    expect(await meta.tagDigest(registry.db, 'hub/library/app', 'v1')).toBe(image.digest);
    expect(await meta.findRepository(registry.db, 'library/app')).toBeNull();
    // The same content through the namespace itself.
    expect((await client.getManifest('hub/library/app', image.digest)).status).toBe(200);
  });

  it("ignores containerd's ns parameter: the upstream is the configuration's, never the request's", async () => {
    const answer = await fetch(`${url}/v2/library/app/manifests/v1?ns=evil.example`, { headers: { accept: image.mediaType } });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('docker-content-digest')).toBe(image.digest);
  });

  it('keeps pushes to un-prefixed names local, and serves a local repository before the mirror', async () => {
    const ownConfig = makeBlob('{"architecture":"arm64","os":"linux"}');
    const own = imageManifest(ownConfig, [layer]);
    await push(client, 'team/tool', 'v1', own, [ownConfig, layer]);
    expect((await client.getManifest('team/tool', 'v1')).headers['docker-content-digest']).toBe(own.digest);
    expect(await meta.tagDigest(registry.db, 'hub/team/tool', 'v1')).toBeNull();
    // A local repository of the same name as an upstream one wins: a local image is never shadowed by the mirror.
    await push(client, 'library/app', 'v2', own, [ownConfig, layer]);
    expect((await client.getManifest('library/app', 'v2')).headers['docker-content-digest']).toBe(own.digest);
    expect((await client.getManifest('library/app', 'v1')).status).toBe(404);
    expect((await client.getManifest('hub/library/app', 'v1')).status).toBe(200);
  });

  it('answers a name neither local nor upstream with the upstream miss, and never rewrites a namespace name', async () => {
    const missing = await client.getManifest('library/absent', 'v1');
    expect(missing.status).toBe(404);
    expect(missing.body.toString()).toMatch(/MANIFEST_UNKNOWN|NAME_UNKNOWN/);
    expect((await client.getManifest('hub', 'v1')).status).toBe(404);
    expect(await meta.findRepository(registry.db, 'hub/hub')).toBeNull();
  });
});

describe('mirror.namespace with token auth on', () => {
  const admin = { username: 'admin', password: 'mirror-admin-password' };
  let distribution: RunningDistribution;
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  let url: string;
  const config = makeBlob('{"architecture":"amd64","os":"linux","auth":true}');
  const image = imageManifest(config, [config]);

  beforeAll(async () => {
    distribution = await startDistribution();
    const upstream = createRegistryClient({ url: distribution.url });
    try {
      await push(upstream, 'library/app', 'v1', image, [config]);
    } finally {
      await upstream.close();
    }
    dir = await mkdtemp(path.join(tmpdir(), 'lading-mirror-auth-'));
    const settings = {
      auth: { enabled: true },
      admin: { user: admin.username, password: admin.password },
      proxies: [{ namespace: 'hub', upstream: distribution.url }],
      mirror: { namespace: 'hub' },
      gc: { enabled: false },
    };
    registry = await createEmbeddedRegistry(parseConfig({ ...settings, data: { dir }, log: { level: 'silent', access: false } }), logger);
    server = registry.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 15 * 60_000);

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await registry?.close();
    await distribution?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('challenges for the proxied name, and a client with a token for it pulls the un-prefixed name', async () => {
    const anonymous = await fetch(`${url}/v2/library/app/manifests/v1`, { headers: { accept: image.mediaType } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain('scope="repository:hub/library/app:pull"');
    const client = createRegistryClient({ url, credentials: admin, timeoutMs: 20_000 });
    try {
      const got = await client.getManifest('library/app', 'v1');
      expect(got.status).toBe(200);
      expect(got.headers['docker-content-digest']).toBe(image.digest);
    } finally {
      await client.close();
    }
  });
});
