/**
 * The `mirror` setting against a real CNCF Distribution v3 upstream: un-prefixed pulls (as dockerd's
 * registry-mirrors and containerd's hosts.toml send them) are answered from the mirror's proxy namespace, while
 * local repositories, pushes and names inside other namespaces are served as written.
 */
import { type RegistryClient, createRegistryClient } from '@lading/client';
import * as meta from '@lading/metadata';
import { type RunningDistribution, type TestBlob, type TestManifest, imageManifest, makeBlob, startDistribution } from '@lading/testing';
import { type ServedRegistry, pushImage, readAll, serveEmbeddedRegistry } from '../test/served-registry';
import type { EmbeddedRegistry } from './embedded-registry';

async function push(client: RegistryClient, repository: string, reference: string, manifest: TestManifest, blobs: TestBlob[]): Promise<void> {
  expect(await pushImage(client, repository, reference, manifest, blobs)).toBe(201);
}

describe('mirror.namespace: un-prefixed pulls answered from a proxy namespace', () => {
  let distribution: RunningDistribution;
  let upstream: RegistryClient;
  let served: ServedRegistry;
  let registry: EmbeddedRegistry;
  let url: string;
  let client: RegistryClient;

  const config = makeBlob('{"architecture":"amd64","os":"linux"}');
  const layer = makeBlob(200 * 1024 + 3);
  const image = imageManifest(config, [layer]);

  beforeAll(async () => {
    distribution = await startDistribution();
    upstream = createRegistryClient({ url: distribution.url });
    await push(upstream, 'library/app', 'v1', image, [config, layer]);
    served = await serveEmbeddedRegistry({ proxies: [{ namespace: 'hub', upstream: distribution.url }], mirror: { namespace: 'hub' }, gc: { enabled: false } });
    ({ registry, url, client } = served);
  }, 15 * 60_000);

  afterAll(async () => {
    await served?.close();
    await upstream?.close();
    await distribution?.remove();
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
  let served: ServedRegistry;
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
    served = await serveEmbeddedRegistry({
      auth: { enabled: true },
      admin: { user: admin.username, password: admin.password },
      proxies: [{ namespace: 'hub', upstream: distribution.url }],
      mirror: { namespace: 'hub' },
      gc: { enabled: false },
    });
    url = served.url;
  }, 15 * 60_000);

  afterAll(async () => {
    await served?.close();
    await distribution?.remove();
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
