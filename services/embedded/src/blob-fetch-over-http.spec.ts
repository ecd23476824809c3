/**
 * The distributed manifest service's `fetchBlob` (services/manifest/src/blob-service-fetch.ts) against a real blob
 * service with pull-through, on loopback, before CNCF Distribution v3 behind the counting relay. It lives here, in
 * the one project that may compose services, because it puts the two together. The blob is fetched by the blob
 * service, the caller is passed on with the gateway's proof (so its event names the same actor), and the upstream's
 * refusals come back as the OCI errors a client would get.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { blobPullThroughOf, createBlobService } from '@lading/blob';
import { type RegistryClient, createRegistryClient } from '@lading/client';
import type { EventContext } from '@lading/events';
import { type ServiceClient, createServiceClient } from '@lading/http';
import { createBlobServiceFetch } from '@lading/manifest';
import { OciError, parseDigest } from '@lading/oci';
import { openProxyRules } from '@lading/runtime';
import { type RunningDistribution, type TestDeps, type UpstreamRelay, createTestDeps, makeBlob, startDistribution, startUpstreamRelay } from '@lading/testing';
import type { ProxyRules } from '@lading/upstream';

describe('fetchBlob of the distributed manifest service, over HTTP to the blob service', () => {
  const secret = randomBytes(32).toString('base64url');
  let distribution: RunningDistribution;
  let relay: UpstreamRelay;
  let upstream: RegistryClient;
  let deps: TestDeps;
  let proxies: ProxyRules;
  let server: http.Server;
  let blobs: ServiceClient;

  beforeAll(async () => {
    distribution = await startDistribution();
    relay = await startUpstreamRelay(distribution.url);
    upstream = createRegistryClient({ url: distribution.url, timeoutMs: 20_000 });
    deps = await createTestDeps({ proxies: [{ namespace: 'hub', upstream: relay.url }], upstreams: { secret } });
    proxies = openProxyRules(deps.config)!;
    const serviceDeps = { db: deps.db, config: deps.config, logger: deps.logger, events: deps.events };
    server = http.createServer(createBlobService({ ...serviceDeps, store: deps.store, pullThrough: blobPullThroughOf(serviceDeps, deps.store, proxies) }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    blobs = createServiceClient({ service: 'blob', urls: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`], headersTimeoutMs: 20_000 });
  }, 120_000);

  afterAll(async () => {
    await blobs?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await proxies?.close();
    await deps?.close();
    await upstream?.close();
    await relay?.close();
    await distribution?.remove();
  });

  const contextOf = (actor: EventContext['actor']): EventContext => ({
    actor,
    request: { id: randomUUID(), addr: '192.0.2.7', method: 'GET', useragent: 'docker/27' },
  });

  async function uploadedEvent(repository: string, digest: string) {
    const rows = await deps.db.query<{ event: { type: string; data: { actor: EventContext['actor']; request: { useragent: string } } } }>(
      `SELECT event FROM outbox WHERE repository = $1 AND type = 'io.lading.blob.uploaded' AND event->>'subject' = $2`,
      [repository, `${repository}@${digest}`],
    );
    return rows.rows.map((r) => r.event.data);
  }

  it('has the blob service fetch the blob, once, with the caller passed on as the actor of its event', async () => {
    const blob = makeBlob(100_000);
    await upstream.pushBlobStream('lib/a', blob.digest, blob.size, blob.data);
    const fetchBlob = createBlobServiceFetch({ blobs, principalSecret: secret });
    await fetchBlob('hub/lib/a', parseDigest(blob.digest), contextOf({ type: 'robot', name: 'ci' }));
    await fetchBlob('hub/lib/a', parseDigest(blob.digest), contextOf({ type: 'robot', name: 'ci' }));
    expect(relay.requests.filter((r) => r === `GET /v2/lib/a/blobs/${blob.digest}`)).toHaveLength(1);
    expect(await uploadedEvent('hub/lib/a', blob.digest)).toEqual([expect.objectContaining({ actor: { type: 'robot', name: 'ci' }, request: expect.objectContaining({ useragent: 'docker/27' }) })]);
  });

  it('passes no actor it cannot prove: without the shared secret the blob service records an anonymous one', async () => {
    const blob = makeBlob(10_000);
    await upstream.pushBlobStream('lib/b', blob.digest, blob.size, blob.data);
    await createBlobServiceFetch({ blobs })('hub/lib/b', parseDigest(blob.digest), contextOf({ type: 'user', name: 'alice' }));
    expect(await uploadedEvent('hub/lib/b', blob.digest)).toEqual([expect.objectContaining({ actor: { type: 'anonymous', name: null } })]);
  });

  it('answers BLOB_UNKNOWN for a blob the upstream lacks, and TOOMANYREQUESTS with Retry-After while it rate-limits', async () => {
    const fetchBlob = createBlobServiceFetch({ blobs, principalSecret: secret });
    const missing = makeBlob(1000);
    await expect(fetchBlob('hub/lib/c', parseDigest(missing.digest), contextOf({ type: 'anonymous', name: null }))).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    relay.rateLimit(7);
    try {
      const refusal = await fetchBlob('hub/lib/c', parseDigest(missing.digest), contextOf({ type: 'anonymous', name: null })).catch((err: unknown) => err);
      expect(refusal).toBeInstanceOf(OciError);
      expect(refusal).toMatchObject({ code: 'TOOMANYREQUESTS', headers: { 'Retry-After': '7' } });
    } finally {
      relay.rateLimit(null);
    }
  });
});
