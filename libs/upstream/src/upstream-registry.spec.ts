import { type RegistryClient, createRegistryClient } from '@lading/client';
import { parseConfig } from '@lading/config';
import { OciError } from '@lading/oci';
import { SPAN_NAMES } from '@lading/telemetry';
import { type TestTracing, startTestTracing } from '@lading/telemetry/test/test-tracing';
import { type RunningDistribution, imageManifest, makeBlob, startDistribution } from '@lading/testing';
import { createProxyRules, refuseProxyWrite } from './proxy-rules';
import { UpstreamNotFoundError, UpstreamRateLimitedError, UpstreamUnauthorizedError, UpstreamUnavailableError } from './upstream-errors';
import { ociErrorOfUpstream } from './upstream-oci-errors';
import { createUpstreamRegistry, parseRetryAfter } from './upstream-registry';

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('UpstreamRegistry against CNCF Distribution with Basic auth', () => {
  let distribution: RunningDistribution;
  let pusher: RegistryClient;
  const config = makeBlob('{"os":"linux"}');
  const layer = makeBlob(300_000);
  const image = imageManifest(config, [layer]);

  beforeAll(async () => {
    distribution = await startDistribution({ basicAuth: true });
    pusher = createRegistryClient({ url: distribution.url, credentials: distribution.credentials! });
    for (const blob of [config, layer]) await pusher.pushBlobStream('team/app', blob.digest, blob.size, blob.data);
    expect((await pusher.putManifest('team/app', 'v1', { mediaType: image.mediaType, body: image.body })).status).toBe(201);
  }, 15 * 60_000);

  afterAll(async () => {
    await pusher?.close();
    await distribution?.remove();
  });

  it('answers the Basic challenge with the credentials: HEAD and GET of a manifest, a blob as a stream', async () => {
    const upstream = createUpstreamRegistry({ url: distribution.url, ...distribution.credentials! });
    try {
      const head = await upstream.headManifest('team/app', 'v1');
      expect(head).toEqual({ digest: image.digest, mediaType: image.mediaType, size: image.body.length });
      const got = await upstream.getManifest('team/app', image.digest, 1 << 20);
      expect(got.body.equals(image.body)).toBe(true);
      expect(got.digest).toBe(image.digest);
      const blob = await upstream.getBlob('team/app', layer.digest);
      expect(blob.size).toBe(layer.size);
      expect((await readAll(blob.body)).equals(layer.data)).toBe(true);
      await expect(upstream.getManifest('team/app', 'v1', 10)).rejects.toThrow(/larger than 10 bytes/);
      await expect(upstream.headManifest('team/app', 'missing')).rejects.toBeInstanceOf(UpstreamNotFoundError);
      await expect(upstream.getBlob('team/app', makeBlob(5).digest)).rejects.toBeInstanceOf(UpstreamNotFoundError);
    } finally {
      await upstream.close();
    }
  });

  it('is refused without credentials or with wrong ones, and names neither in its errors', async () => {
    for (const credentials of [{}, { username: 'docker', password: 'wrong-password-123' }]) {
      const upstream = createUpstreamRegistry({ url: distribution.url, ...credentials });
      try {
        const err = await upstream.headManifest('team/app', 'v1').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UpstreamUnauthorizedError);
        expect(String((err as Error).message)).not.toContain('wrong-password-123');
      } finally {
        await upstream.close();
      }
    }
  });

  it('traces each request as an upstream.request span: repository, method, status, and the failure when it fails', async () => {
    const tracing: TestTracing = startTestTracing();
    const upstream = createUpstreamRegistry({ url: distribution.url, ...distribution.credentials! });
    try {
      await upstream.headManifest('team/app', 'v1');
      await expect(upstream.headManifest('team/app', 'missing')).rejects.toBeInstanceOf(UpstreamNotFoundError);
      const spans = tracing.spans().filter((s) => s.name === SPAN_NAMES.upstreamRequest);
      expect(spans.map((s) => [s.attributes['lading.repository'], s.attributes['http.request.method'], s.attributes['http.response.status_code'] ?? null, s.status.code])).toEqual([
        ['team/app', 'HEAD', 200, 0],
        ['team/app', 'HEAD', null, 2],
      ]);
    } finally {
      await upstream.close();
      await tracing.stop();
    }
  });

  it('fails with UpstreamUnavailableError when nothing listens', async () => {
    const upstream = createUpstreamRegistry({ url: 'http://127.0.0.1:1' });
    try {
      await expect(upstream.headManifest('team/app', 'v1')).rejects.toBeInstanceOf(UpstreamUnavailableError);
    } finally {
      await upstream.close();
    }
  });
});

describe('parseRetryAfter', () => {
  it('reads delay-seconds and HTTP dates, and nothing else', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
  });
});

describe('proxy rules', () => {
  const { proxies } = parseConfig({
    proxies: [
      { namespace: 'hub', upstream: 'https://registry-1.docker.io', tagTtl: '2m' },
      { namespace: 'cache/ghcr', upstream: 'https://ghcr.io' },
    ],
  });

  it('maps a repository under a namespace onto the upstream path, with one client per rule', async () => {
    const made: string[] = [];
    const rules = createProxyRules(proxies, (deps) => {
      made.push(deps.url);
      return createUpstreamRegistry(deps);
    });
    expect(rules.match('hub/library/alpine')).toMatchObject({ namespace: 'hub', upstreamRepository: 'library/alpine', tagTtlMs: 120_000 });
    expect(rules.match('cache/ghcr/org/tool')).toMatchObject({ namespace: 'cache/ghcr', upstreamRepository: 'org/tool', tagTtlMs: 600_000 });
    expect(rules.match('hub/library/alpine')?.upstream).toBe(rules.match('hub/other')?.upstream);
    // What events name the cache by: its namespace and its upstream's origin.
    expect(rules.match('cache/ghcr/org/tool')?.proxy).toEqual({ namespace: 'cache/ghcr', upstream: 'https://ghcr.io' });
    expect(made).toEqual(['https://registry-1.docker.io', 'https://ghcr.io']);
    // The namespace itself has no upstream path; look-alike names are not under it.
    expect(rules.match('hub')).toBeNull();
    expect(rules.match('hubble/app')).toBeNull();
    expect(rules.match('cache/other')).toBeNull();
    await rules.close();
  });

  it('refuses writes into a proxied namespace with DENIED', () => {
    expect(() => refuseProxyWrite(proxies, 'hub/library/alpine')).toThrow(expect.objectContaining({ code: 'DENIED' }));
    expect(() => refuseProxyWrite(proxies, 'hub')).toThrow(OciError);
    expect(() => refuseProxyWrite(proxies, 'hubble/app')).not.toThrow();
  });

  it('turns upstream failures into the OCI errors clients understand', () => {
    const notFound = () => new OciError('MANIFEST_UNKNOWN');
    expect(ociErrorOfUpstream(new UpstreamNotFoundError('x'), 'hub', notFound)).toMatchObject({ code: 'MANIFEST_UNKNOWN', status: 404 });
    expect(ociErrorOfUpstream(new UpstreamUnauthorizedError('x'), 'hub', notFound)).toMatchObject({ code: 'MANIFEST_UNKNOWN', status: 404 });
    expect(ociErrorOfUpstream(new UpstreamRateLimitedError('x', 2500), 'hub', notFound)).toMatchObject({ code: 'TOOMANYREQUESTS', headers: { 'Retry-After': '3' } });
    expect(ociErrorOfUpstream(new UpstreamUnavailableError('x'), 'hub', notFound)).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    const other = new Error('db down');
    expect(ociErrorOfUpstream(other, 'hub', notFound)).toBe(other);
  });
});
