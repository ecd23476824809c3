/**
 * Last-pulled times and eviction of a pull-through cache, in the embedded registry against a real CNCF Distribution
 * upstream (behind the counting relay): pulls in the proxy namespace are recorded in batches, and the collector's
 * sweep evicts the cache's manifests not pulled for `evictAfter` (and only those: recently pulled content and
 * ordinary namespaces stay), as deletes with events, after which their blobs are collected and the next pull fetches
 * the image again. Layers are fetched lazily: the collector keeps a manifest whose layers are not fetched yet, and
 * the layers fetched after it.
 */
import { type RegistryClient, createRegistryClient } from '@lading/client';
import type { LadingEvent } from '@lading/events';
import {
  type RunningDistribution,
  type TestBlob,
  type TestManifest,
  type UpstreamRelay,
  imageManifest,
  makeBlob,
  makeGcQueuesDue,
  startDistribution,
  startUpstreamRelay,
} from '@lading/testing';
import { type ServedRegistry, pushImage, serveEmbeddedRegistry } from '../test/served-registry';
import type { EmbeddedRegistry } from './embedded-registry';

const EVICT_AFTER_MS = 1500;

async function push(client: RegistryClient, repository: string, reference: string, manifest: TestManifest, blobs: TestBlob[]): Promise<void> {
  expect(await pushImage(client, repository, reference, manifest, blobs)).toBe(201);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('eviction of a pull-through cache (evictAfter)', () => {
  let distribution: RunningDistribution;
  let relay: UpstreamRelay;
  let upstream: RegistryClient;
  let served: ServedRegistry;
  let registry: EmbeddedRegistry;
  let client: RegistryClient;
  const events: LadingEvent[] = [];

  const configA = makeBlob('{"architecture":"amd64","os":"linux","variant":"a"}');
  const layerA = makeBlob(4096 + 1);
  const imageA = imageManifest(configA, [layerA]);
  const configB = makeBlob('{"architecture":"amd64","os":"linux","variant":"b"}');
  const layerB = makeBlob(4096 + 2);
  const imageB = imageManifest(configB, [layerB]);
  const configL = makeBlob('{"architecture":"amd64","os":"linux","variant":"local"}');
  const layerL = makeBlob(4096 + 3);
  const imageL = imageManifest(configL, [layerL]);

  const lastPulled = async (repository: string, digest: string) =>
    (
      await registry.db.query<{ at: Date | null }>(
        `SELECT m.last_pulled_at AS at FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1 AND m.digest = $2`,
        [repository, digest],
      )
    ).rows;
  const blobStored = async (digest: string) => (await registry.db.query(`SELECT 1 FROM blobs WHERE digest = $1`, [digest])).rows.length > 0;
  const manifestGets = () => relay.requests.filter((r) => r.startsWith('GET /v2/library/a/manifests/')).length;

  beforeAll(async () => {
    distribution = await startDistribution();
    relay = await startUpstreamRelay(distribution.url);
    upstream = createRegistryClient({ url: distribution.url });
    await push(upstream, 'library/a', 'v1', imageA, [configA, layerA]);
    await push(upstream, 'library/b', 'v1', imageB, [configB, layerB]);
    served = await serveEmbeddedRegistry({
      proxies: [{ namespace: 'hub', upstream: relay.url, evictAfter: `${EVICT_AFTER_MS}ms` }],
      gc: { enabled: false, reviewDelay: '0s', allowShortDelay: true },
    });
    ({ registry, client } = served);
    registry.bus.subscribe((event) => void events.push(event));
  }, 15 * 60_000);

  afterAll(async () => {
    await served?.close();
    await upstream?.close();
    await relay?.close();
    await distribution?.remove();
  });

  it('records pulls in the proxy namespace only after a flush, many pulls as one row update, ordinary pulls not at all', async () => {
    await push(client, 'local/app', 'v1', imageL, [configL, layerL]);
    expect((await client.getManifest('hub/library/a', 'v1')).status).toBe(200);
    expect((await client.getManifest('hub/library/b', 'v1')).status).toBe(200);
    expect(await lastPulled('hub/library/a', imageA.digest)).toEqual([{ at: null }]);
    expect(await registry.flushPulls()).toBe(2);
    const [{ at: first }] = await lastPulled('hub/library/a', imageA.digest);
    expect(first).toBeInstanceOf(Date);

    for (let i = 0; i < 50; i++) {
      const answer = i % 2 === 0 ? await client.getManifest('hub/library/a', 'v1') : await client.getManifest('hub/library/a', imageA.digest);
      expect(answer.status).toBe(200);
    }
    expect((await client.getManifest('local/app', 'v1')).status).toBe(200);
    // Fifty pulls, by tag and by digest, are one row of one batch; the ordinary namespace's pull is none.
    expect(await registry.flushPulls()).toBe(1);
    expect((await lastPulled('hub/library/a', imageA.digest))[0].at!.getTime()).toBeGreaterThanOrEqual(first!.getTime());
    expect(await lastPulled('local/app', imageL.digest)).toEqual([{ at: null }]);
    expect(await registry.flushPulls()).toBe(0);
  });

  it('keeps a proxied manifest whose layers are not fetched yet, and the layers it fetches later, through the collector', async () => {
    // The manifests were stored without their blobs (the cache fetches layers when asked).
    for (const blob of [configA, layerA, configB, layerB]) expect(await blobStored(blob.digest)).toBe(false);
    await makeGcQueuesDue(registry.db);
    await registry.gc.runUntilIdle();
    expect(await lastPulled('hub/library/a', imageA.digest)).toHaveLength(1);
    expect(await lastPulled('hub/library/b', imageB.digest)).toHaveLength(1);
    // Fetched now, each blob is reviewed as any upload is; its manifest's reference keeps it.
    for (const [repository, blob] of [['hub/library/a', configA], ['hub/library/a', layerA], ['hub/library/b', configB], ['hub/library/b', layerB]] as const) {
      expect((await client.getBlob(repository, blob.digest)).body.equals(blob.data)).toBe(true);
    }
    await makeGcQueuesDue(registry.db);
    await registry.gc.runUntilIdle();
    for (const blob of [configA, layerA, configB, layerB]) expect(await blobStored(blob.digest)).toBe(true);
    expect((await client.getBlob('hub/library/a', layerA.digest)).body.equals(layerA.data)).toBe(true);
  });

  it('evicts only what the cache has not served for evictAfter, with events; its blobs are collected; the next pull fetches it again', async () => {
    await sleep(EVICT_AFTER_MS + 300);
    // b is pulled again: recently pulled content stays. a is not: it is stale. local/app is old but no cache's.
    expect((await client.getManifest('hub/library/b', 'v1')).status).toBe(200);
    await registry.flushPulls();
    events.length = 0;

    expect((await registry.gc.sweep()).manifestsEvicted).toBe(1);
    // The collector woke the relay: its drain may be the one in flight, so wait for the events to be heard.
    for (let i = 0; i < 100 && events.length < 2; i++) {
      await registry.flushEvents();
      await sleep(20);
    }
    expect(events.map((e) => [e.type, e.data?.repository])).toEqual(
      expect.arrayContaining([
        ['io.lading.tag.deleted', 'hub/library/a'],
        ['io.lading.manifest.deleted', 'hub/library/a'],
      ]),
    );
    expect(events.every((e) => e.data?.repository === 'hub/library/a')).toBe(true);
    expect(await lastPulled('hub/library/a', imageA.digest)).toEqual([]);
    expect(await lastPulled('hub/library/b', imageB.digest)).toHaveLength(1);
    expect(await lastPulled('local/app', imageL.digest)).toHaveLength(1);
    expect((await client.getManifest('local/app', 'v1')).status).toBe(200);

    await registry.gc.runUntilIdle();
    expect(await blobStored(layerA.digest)).toBe(false);
    expect(await blobStored(layerB.digest)).toBe(true);
    expect(await blobStored(layerL.digest)).toBe(true);

    const before = manifestGets();
    const again = await client.getManifest('hub/library/a', 'v1');
    expect(again.status).toBe(200);
    expect(again.headers['docker-content-digest']).toBe(imageA.digest);
    expect(manifestGets()).toBeGreaterThan(before);
    expect(await lastPulled('hub/library/a', imageA.digest)).toHaveLength(1);
    expect(await blobStored(layerA.digest)).toBe(false);
    expect((await client.getBlob('hub/library/a', layerA.digest)).body.equals(layerA.data)).toBe(true);
    expect(await blobStored(layerA.digest)).toBe(true);
  });

  it('keeps a manifest the cache fetched by digest alone through the untagged rule, until eviction ends it', async () => {
    const configC = makeBlob('{"architecture":"amd64","os":"linux","variant":"c"}');
    const layerC = makeBlob(4096 + 4);
    const imageC = imageManifest(configC, [layerC]);
    await push(upstream, 'library/c', 'v1', imageC, [configC, layerC]);
    // Pulled by digest only (as Kubernetes pins images): stored untagged, with nothing listing it.
    expect((await client.getManifest('hub/library/c', imageC.digest)).status).toBe(200);
    expect((await client.getBlob('hub/library/c', layerC.digest)).body.equals(layerC.data)).toBe(true);
    await registry.flushPulls();
    await makeGcQueuesDue(registry.db);
    await registry.gc.runUntilIdle();
    expect(await lastPulled('hub/library/c', imageC.digest)).toHaveLength(1);
    expect(await blobStored(layerC.digest)).toBe(true);

    await sleep(EVICT_AFTER_MS + 300);
    expect((await registry.gc.sweep()).manifestsEvicted).toBeGreaterThanOrEqual(1);
    await makeGcQueuesDue(registry.db);
    await registry.gc.runUntilIdle();
    expect(await lastPulled('hub/library/c', imageC.digest)).toEqual([]);
    expect(await blobStored(layerC.digest)).toBe(false);
  });
});
