/**
 * The pull-through cache against real upstreams on loopback: CNCF Distribution v3 (behind a relay that counts
 * requests and can rate-limit or corrupt a blob) and a second Lading with token auth on. Content is pushed into the
 * upstream, then pulled through the proxy namespace `hub` with the registry client, bytes and digests compared.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { type RegistryClient, createRegistryClient } from '@lading/client';
import type { LadingConfigInput } from '@lading/config';
import { type LadingEvent, createEventSchemaValidator } from '@lading/events';
import * as meta from '@lading/metadata';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { METRIC_NAMES, type RegistryMetrics, createRegistryMetrics, createTallyProducer } from '@lading/telemetry';
import { type RunningDistribution, type TestBlob, type TestManifest, type UpstreamRelay, imageIndex, imageManifest, makeBlob, startDistribution, startUpstreamRelay } from '@lading/testing';
import { type ServedRegistry, pushImage, readAll, serveEmbeddedRegistry } from '../test/served-registry';

/** An embedded registry with the proxies of a spec, its log silent. */
const serve = (config: LadingConfigInput, metrics?: RegistryMetrics): Promise<ServedRegistry> => serveEmbeddedRegistry(config, { metrics });

/** Uploads a blob unless held (POST then PUT: Distribution v3 has no single-request upload). */
async function ensureBlob(client: RegistryClient, repository: string, blob: TestBlob): Promise<void> {
  if ((await client.headBlob(repository, blob.digest)).status === 200) return;
  await client.pushBlobStream(repository, blob.digest, blob.size, blob.data);
}

async function push(client: RegistryClient, repository: string, reference: string, manifest: TestManifest, blobs: TestBlob[]): Promise<void> {
  expect(await pushImage(client, repository, reference, manifest, blobs)).toBe(201);
}

describe('pull-through cache of a CNCF Distribution upstream', () => {
  let distribution: RunningDistribution;
  let relay: UpstreamRelay;
  let upstream: RegistryClient;
  let proxy: ServedRegistry;
  const events: LadingEvent[] = [];
  const tallies = createTallyProducer();
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true, metricProducers: [tallies] });
  const provider = new MeterProvider({ readers: [exporter] });

  /** The value of a counter's series with these labels (0 when absent). */
  async function counter(name: string, labels: Record<string, string>): Promise<number> {
    const { resourceMetrics } = await exporter.collect();
    const metric = resourceMetrics.scopeMetrics.flatMap((m) => m.metrics).find((m) => m.descriptor.name === name);
    const point = metric?.dataPoints.find((d) => Object.entries(labels).every(([k, v]) => d.attributes[k] === v));
    return Number(point?.value ?? 0);
  }

  const config = makeBlob('{"architecture":"amd64","os":"linux"}');
  const layers = [makeBlob(3 * 1024 * 1024 + 17), makeBlob(1000)];
  const image = imageManifest(config, layers);

  beforeAll(async () => {
    distribution = await startDistribution();
    relay = await startUpstreamRelay(distribution.url);
    upstream = createRegistryClient({ url: distribution.url });
    await push(upstream, 'library/app', 'v1', image, [config, ...layers]);
    proxy = await serve({ proxies: [{ namespace: 'hub', upstream: relay.url, tagTtl: '2s' }], gc: { enabled: false } }, createRegistryMetrics(provider.getMeter('test'), tallies));
    proxy.registry.bus.subscribe((event) => void events.push(event));
  }, 15 * 60_000);

  afterAll(async () => {
    await proxy?.close();
    await upstream?.close();
    await relay?.close();
    await distribution?.remove();
    await provider.shutdown();
  });

  it('pulls an image by tag: the manifest at once, then each blob only when asked, with the upstream bytes', async () => {
    const before = relay.requests.length;
    const manifest = await proxy.client.getManifest('hub/library/app', 'v1');
    expect(manifest.status).toBe(200);
    expect(manifest.headers['docker-content-digest']).toBe(image.digest);
    expect(manifest.body.equals(image.body)).toBe(true);
    // The manifest is stored and answered without anything it references: no blob was asked of the upstream.
    expect(relay.requests.slice(before).filter((r) => r.includes('/blobs/'))).toEqual([]);
    for (const blob of [config, ...layers]) expect(await meta.findRepositoryBlob(proxy.registry.db, 'hub/library/app', blob.digest)).toBeNull();
    // Each layer is fetched when the client asks for it, after its manifest was stored, and served with its bytes.
    for (const blob of [config, ...layers]) {
      const got = await readAll(await proxy.client.openBlob('hub/library/app', blob.digest));
      expect(got.equals(blob.data)).toBe(true);
    }
    expect(relay.requests.slice(before).filter((r) => r.includes('/blobs/'))).toEqual([config, ...layers].map((b) => `GET /v2/library/app/blobs/${b.digest}`));
    expect(await meta.tagDigest(proxy.registry.db, 'hub/library/app', 'v1')).toBe(image.digest);
    await proxy.registry.flushEvents();
    const pushed = events.find((e) => e.type === 'io.lading.manifest.pushed' && e.data?.repository === 'hub/library/app');
    expect(pushed?.data?.digest).toBe(image.digest);
  });

  it('marks what enters through the cache in its events (data.proxy), and nothing an ordinary push stores', async () => {
    const mine = makeBlob('{"architecture":"amd64","os":"linux","mine":true}');
    const own = imageManifest(mine, [layers[1]]);
    await push(proxy.client, 'team/own', 'v1', own, [mine, layers[1]]);
    await proxy.registry.flushEvents();
    const validate = await createEventSchemaValidator();
    const of = (repository: string, type: string, digest: string) => events.find((e) => e.type === type && e.data.repository === repository && e.data.digest === digest);
    const mark = { namespace: 'hub', upstream: new URL(relay.url).origin };
    const cached = [
      of('hub/library/app', 'io.lading.manifest.pushed', image.digest),
      of('hub/library/app', 'io.lading.tag.updated', image.digest),
      of('hub/library/app', 'io.lading.blob.uploaded', layers[0].digest),
    ];
    const pushed = [
      of('team/own', 'io.lading.manifest.pushed', own.digest),
      of('team/own', 'io.lading.tag.updated', own.digest),
      of('team/own', 'io.lading.blob.uploaded', layers[1].digest),
    ];
    for (const event of cached) expect(event?.data.proxy).toEqual(mark);
    for (const event of pushed) expect(event?.data.proxy).toBeNull();
    expect([...cached, ...pushed].flatMap((event) => validate(event))).toEqual([]);
  });

  it('serves a digest once cached without asking the upstream again', async () => {
    const before = relay.requests.length;
    const manifest = await proxy.client.getManifest('hub/library/app', image.digest);
    expect(manifest.status).toBe(200);
    const blob = await readAll(await proxy.client.openBlob('hub/library/app', layers[0].digest));
    expect(blob.equals(layers[0].data)).toBe(true);
    expect(relay.requests.slice(before)).toEqual([]);
  });

  it('streams a blob miss to the client while storing it, and serves HEAD and Range of a miss', async () => {
    const lone = makeBlob(2 * 1024 * 1024 + 5);
    const small = makeBlob(5000);
    await ensureBlob(upstream, 'library/lone', lone);
    await ensureBlob(upstream, 'library/lone', small);
    const got = await readAll(await proxy.client.openBlob('hub/library/lone', lone.digest));
    expect(got.equals(lone.data)).toBe(true);
    expect(Number((await meta.findRepositoryBlob(proxy.registry.db, 'hub/library/lone', lone.digest))?.size)).toBe(lone.size);
    const head = await proxy.client.headBlob('hub/library/lone', small.digest);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(small.size));
    const range = await proxy.client.send('GET', `/v2/hub/library/lone/blobs/${lone.digest}`, { headers: { range: 'bytes=10-19' } });
    expect(range.status).toBe(206);
    expect(range.body.equals(lone.data.subarray(10, 20))).toBe(true);
  });

  it('pulls a multi-arch index by digest, then its child manifests and their blobs when asked', async () => {
    const armBlobs = [makeBlob('{"architecture":"arm64","os":"linux"}'), makeBlob(2000)];
    const armImage = imageManifest(armBlobs[0], [armBlobs[1]]);
    const amdBlobs = [makeBlob('{"architecture":"amd64","os":"linux","variant":"x"}'), makeBlob(3000)];
    const amdImage = imageManifest(amdBlobs[0], [amdBlobs[1]]);
    const multi = imageIndex([amdImage, armImage]);
    await push(upstream, 'library/multi', armImage.digest, armImage, armBlobs);
    await push(upstream, 'library/multi', amdImage.digest, amdImage, amdBlobs);
    await push(upstream, 'library/multi', 'latest', multi, []);
    const got = await proxy.client.getManifest('hub/library/multi', multi.digest);
    expect(got.status).toBe(200);
    expect(got.body.equals(multi.body)).toBe(true);
    for (const child of [armImage, amdImage]) expect(await meta.storedManifestExists(proxy.registry.db, 'hub/library/multi', child.digest)).toBe(false);
    // A HEAD of a child not stored yet is a miss like a GET: fetched, stored, answered.
    const head = await proxy.client.send('HEAD', `/v2/hub/library/multi/manifests/${armImage.digest}`, { headers: { accept: armImage.mediaType } });
    expect(head.status).toBe(200);
    expect(head.headers['docker-content-digest']).toBe(armImage.digest);
    for (const child of [armImage, amdImage]) {
      const m = await proxy.client.getManifest('hub/library/multi', child.digest);
      expect(m.body.equals(child.body)).toBe(true);
    }
    const layer = await readAll(await proxy.client.openBlob('hub/library/multi', amdBlobs[1].digest));
    expect(layer.equals(amdBlobs[1].data)).toBe(true);
  });

  it('pulls one platform of a multi-arch index by fetching only the index, that platform\'s manifest and its blobs', async () => {
    const armBlobs = [makeBlob('{"architecture":"arm64","os":"linux","one":true}'), makeBlob(2500)];
    const armImage = imageManifest(armBlobs[0], [armBlobs[1]]);
    const amdBlobs = [makeBlob('{"architecture":"amd64","os":"linux","one":true}'), makeBlob(3500), makeBlob(1500)];
    const amdImage = imageManifest(amdBlobs[0], amdBlobs.slice(1));
    const multi = imageIndex([amdImage, armImage]);
    await push(upstream, 'library/platforms', armImage.digest, armImage, armBlobs);
    await push(upstream, 'library/platforms', amdImage.digest, amdImage, amdBlobs);
    await push(upstream, 'library/platforms', 'latest', multi, []);
    const before = relay.requests.length;
    // What docker pull --platform linux/amd64 asks: the index by tag, the platform's manifest by digest, its blobs.
    const index = await proxy.client.getManifest('hub/library/platforms', 'latest');
    expect(index.headers['docker-content-digest']).toBe(multi.digest);
    const chosen = (JSON.parse(index.body.toString()) as { manifests: Array<{ digest: string; platform: { architecture: string } }> }).manifests.find(
      (m) => m.platform.architecture === 'amd64',
    );
    expect(chosen?.digest).toBe(amdImage.digest);
    expect((await proxy.client.getManifest('hub/library/platforms', amdImage.digest)).body.equals(amdImage.body)).toBe(true);
    for (const blob of amdBlobs) expect((await readAll(await proxy.client.openBlob('hub/library/platforms', blob.digest))).equals(blob.data)).toBe(true);
    const asked = relay.requests.slice(before).filter((r) => r.includes('/library/platforms/'));
    expect(asked.sort()).toEqual(
      [
        'GET /v2/library/platforms/manifests/latest',
        `GET /v2/library/platforms/manifests/${amdImage.digest}`,
        ...amdBlobs.map((b) => `GET /v2/library/platforms/blobs/${b.digest}`),
      ].sort(),
    );
    expect(await meta.storedManifestExists(proxy.registry.db, 'hub/library/platforms', armImage.digest)).toBe(false);
    for (const blob of armBlobs) expect(await meta.findRepositoryBlob(proxy.registry.db, 'hub/library/platforms', blob.digest)).toBeNull();
  });

  it('asks the upstream once for concurrent misses of one blob and one tag (single flight in the process)', async () => {
    const shared = makeBlob(1024 * 1024 + 3);
    const sharedConfig = makeBlob('{"os":"linux","shared":true}');
    const sharedImage = imageManifest(sharedConfig, [shared]);
    await push(upstream, 'library/shared', 'v1', sharedImage, [sharedConfig, shared]);
    const before = relay.requests.length;
    const blobs = await Promise.all(Array.from({ length: 20 }, async () => readAll(await proxy.client.openBlob('hub/library/shared', shared.digest))));
    for (const got of blobs) expect(got.equals(shared.data)).toBe(true);
    const manifests = await Promise.all(Array.from({ length: 10 }, () => proxy.client.getManifest('hub/library/shared', 'v1')));
    for (const got of manifests) expect(got.headers['docker-content-digest']).toBe(sharedImage.digest);
    const asked = relay.requests.slice(before);
    expect(asked.filter((r) => r === `GET /v2/library/shared/blobs/${shared.digest}`)).toHaveLength(1);
    expect(asked.filter((r) => r === 'GET /v2/library/shared/manifests/v1')).toHaveLength(1);
  });

  it('answers MANIFEST_UNKNOWN and BLOB_UNKNOWN for what the upstream does not have', async () => {
    const manifest = await proxy.client.getManifest('hub/library/app', 'nope');
    expect(manifest.status).toBe(404);
    expect(manifest.code).toBe('MANIFEST_UNKNOWN');
    const blob = await proxy.client.getBlob('hub/library/app', makeBlob(10).digest);
    expect(blob.status).toBe(404);
    expect(blob.code).toBe('BLOB_UNKNOWN');
  });

  it('refuses pushes into the proxy namespace with DENIED, and leaves other namespaces alone', async () => {
    const blob = makeBlob(100);
    const upload = await proxy.client.uploadBlob('hub/library/app', blob);
    expect(upload.status).toBe(403);
    expect(upload.code).toBe('DENIED');
    expect(upload.body.toString()).toMatch(/hub is a pull-through cache/);
    const put = await proxy.client.putManifest('hub/library/app', 'mine', { mediaType: image.mediaType, body: image.body });
    expect(put.status).toBe(403);
    expect(put.code).toBe('DENIED');
    expect((await proxy.client.uploadBlob('team/app', blob)).status).toBe(201);
  });

  it('stores nothing of a blob whose upstream bytes do not match its digest, and fails the client', async () => {
    const bad = makeBlob(256 * 1024);
    await ensureBlob(upstream, 'library/bad', bad);
    relay.corrupt(bad.digest);
    try {
      await expect(readAll(await proxy.client.openBlob('hub/library/bad', bad.digest, false))).rejects.toThrow();
      expect(await meta.findRepositoryBlob(proxy.registry.db, 'hub/library/bad', bad.digest)).toBeNull();
      const head = await proxy.client.headBlob('hub/library/bad', bad.digest);
      expect(head.status).toBe(503);
    } finally {
      relay.corrupt(null);
    }
    const good = await readAll(await proxy.client.openBlob('hub/library/bad', bad.digest));
    expect(good.equals(bad.data)).toBe(true);
  });

  it('stores nothing of a blob whose upstream dies mid-body, fails the client, and fetches it whole next time', async () => {
    const big = makeBlob(3 * 1024 * 1024);
    await ensureBlob(upstream, 'library/cut', big);
    relay.cut(big.digest);
    try {
      // The client's download fails, before the response head or in the body, depending on where the cut lands.
      await expect((async () => readAll(await proxy.client.openBlob('hub/library/cut', big.digest, false)))()).rejects.toThrow();
      expect(await meta.findRepositoryBlob(proxy.registry.db, 'hub/library/cut', big.digest)).toBeNull();
      // No partial bytes stay behind either (the scratch upload is deleted once the fetch has failed).
      await new Promise((r) => setTimeout(r, 100));
      expect(await readdir(path.join(proxy.dir, 'blobs', 'uploads'))).toEqual([]);
    } finally {
      relay.cut(null);
    }
    const whole = await readAll(await proxy.client.openBlob('hub/library/cut', big.digest));
    expect(whole.equals(big.data)).toBe(true);
  });

  it('evicts on delete: a deleted tag, manifest or blob is fetched again on the next pull', async () => {
    const lone = makeBlob(4000);
    await ensureBlob(upstream, 'library/evict', lone);
    const small = imageManifest(config, [lone]);
    await push(upstream, 'library/evict', 'v1', small, [config]);
    expect((await proxy.client.getManifest('hub/library/evict', 'v1')).status).toBe(200);
    expect((await readAll(await proxy.client.openBlob('hub/library/evict', lone.digest))).equals(lone.data)).toBe(true);
    expect((await proxy.client.deleteManifest('hub/library/evict', 'v1')).status).toBe(202);
    expect((await proxy.client.deleteManifest('hub/library/evict', small.digest)).status).toBe(202);
    expect((await proxy.client.deleteBlob('hub/library/evict', lone.digest)).status).toBe(202);
    expect(await meta.findRepositoryBlob(proxy.registry.db, 'hub/library/evict', lone.digest)).toBeNull();
    const again = await proxy.client.getManifest('hub/library/evict', 'v1');
    expect(again.status).toBe(200);
    expect(again.headers['docker-content-digest']).toBe(small.digest);
    expect((await readAll(await proxy.client.openBlob('hub/library/evict', lone.digest))).equals(lone.data)).toBe(true);
  });

  it('re-checks a tag with a HEAD after tagTtl and follows it when it moved upstream', async () => {
    const next = imageManifest(config, [layers[1]]);
    // This pull confirms the tag (checked now, or within the last 2 s)...
    expect((await proxy.client.getManifest('hub/library/app', 'v1')).headers['docker-content-digest']).toBe(image.digest);
    await push(upstream, 'library/app', 'v1', next, []);
    // ...so within the TTL the cached tag is served without asking, although it moved upstream.
    const asked = relay.requests.length;
    expect((await proxy.client.getManifest('hub/library/app', 'v1')).headers['docker-content-digest']).toBe(image.digest);
    expect(relay.requests.length).toBe(asked);
    await new Promise((r) => setTimeout(r, 2100));
    const before = relay.requests.length;
    const moved = await proxy.client.getManifest('hub/library/app', 'v1');
    expect(moved.headers['docker-content-digest']).toBe(next.digest);
    expect(relay.requests.slice(before)[0]).toBe('HEAD /v2/library/app/manifests/v1');
  });

  it('answers TOOMANYREQUESTS with Retry-After while the upstream rate-limits, and still serves what it holds', async () => {
    relay.rateLimit(2);
    try {
      const miss = await proxy.client.getManifest('hub/library/other', 'v1');
      expect(miss.status).toBe(429);
      expect(miss.code).toBe('TOOMANYREQUESTS');
      expect(Number(miss.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // Within Retry-After the upstream is not asked again.
      const asked = relay.requests.length;
      expect((await proxy.client.getManifest('hub/library/other', 'v2')).status).toBe(429);
      expect(relay.requests.length).toBe(asked);
      await new Promise((r) => setTimeout(r, 600));
      const cached = await proxy.client.getManifest('hub/library/app', 'v1');
      expect(cached.status).toBe(200);
    } finally {
      relay.rateLimit(null);
    }
  });

  it('serves cached tags, digests and blobs with the upstream stopped, and UNAVAILABLE for the rest', async () => {
    await distribution.stop();
    await new Promise((r) => setTimeout(r, 2100));
    const tagged = await proxy.client.getManifest('hub/library/app', 'v1');
    expect(tagged.status).toBe(200);
    expect((await proxy.client.getManifest('hub/library/app', image.digest)).status).toBe(200);
    const blob = await readAll(await proxy.client.openBlob('hub/library/app', layers[0].digest));
    expect(blob.equals(layers[0].data)).toBe(true);
    const miss = await proxy.client.getManifest('hub/library/never', 'v1');
    expect(miss.status).toBe(503);
    expect(miss.code).toBe('UNAVAILABLE');
    expect(miss.body.toString()).not.toContain(relay.url);
    const blobMiss = await proxy.client.getBlob('hub/library/never', makeBlob(10).digest);
    expect(blobMiss.status).toBe(503);
  });

  it('counts hits, misses, waits, stale tags, upstream failures and upstream bytes', async () => {
    const of = (kind: string, result: string) => counter(METRIC_NAMES.proxyRequests, { namespace: 'hub', kind, result });
    expect(await of('blob', 'miss')).toBeGreaterThanOrEqual(5);
    expect(await of('blob', 'hit')).toBeGreaterThanOrEqual(3);
    expect(await of('blob', 'wait')).toBeGreaterThanOrEqual(1);
    expect(await of('blob', 'error')).toBeGreaterThanOrEqual(2);
    expect(await of('manifest', 'miss')).toBeGreaterThanOrEqual(3);
    expect(await of('manifest', 'hit')).toBeGreaterThanOrEqual(2);
    expect(await of('manifest', 'stale')).toBeGreaterThanOrEqual(1);
    expect(await of('manifest', 'error')).toBeGreaterThanOrEqual(2);
    expect(await counter(METRIC_NAMES.proxyUpstreamBytes, { namespace: 'hub' })).toBeGreaterThan(layers[0].size);
  });
});

describe('pull-through cache of a Lading upstream with token auth', () => {
  const admin = { username: 'admin', password: 'upstream-admin-password' };
  let upstreamLading: ServedRegistry;
  let proxy: ServedRegistry;
  let anonymous: ServedRegistry;

  beforeAll(async () => {
    upstreamLading = await serve({ auth: { enabled: true }, admin: { user: admin.username, password: admin.password }, gc: { enabled: false } });
    proxy = await serve({ proxies: [{ namespace: 'mirror', upstream: upstreamLading.url, ...admin }], gc: { enabled: false } });
    anonymous = await serve({ proxies: [{ namespace: 'mirror', upstream: upstreamLading.url }], gc: { enabled: false } });
  });

  afterAll(async () => {
    await anonymous?.close();
    await proxy?.close();
    await upstreamLading?.close();
  });

  it('fetches through the token flow with the configured credentials; without them the upstream refuses', async () => {
    const pusher = createRegistryClient({ url: upstreamLading.url, credentials: admin });
    const config = makeBlob('{"os":"linux"}');
    const layer = makeBlob(70_000);
    const image = imageManifest(config, [layer]);
    try {
      await push(pusher, 'private/app', 'v1', image, [config, layer]);
    } finally {
      await pusher.close();
    }
    const got = await proxy.client.getManifest('mirror/private/app', 'v1');
    expect(got.status).toBe(200);
    expect(got.body.equals(image.body)).toBe(true);
    const blob = await readAll(await proxy.client.openBlob('mirror/private/app', layer.digest));
    expect(blob.equals(layer.data)).toBe(true);

    const refused = await anonymous.client.getManifest('mirror/private/app', 'v1');
    expect(refused.status).toBe(404);
    expect(refused.code).toBe('MANIFEST_UNKNOWN');
    expect(refused.body.toString()).toMatch(/refused access/);
  });
});
