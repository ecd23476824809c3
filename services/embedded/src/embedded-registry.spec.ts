import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { parseConfig } from '@lading/config';
import type { LadingEvent } from '@lading/events';
import { METRIC_NAMES, createLogger, createRegistryMetrics, createTallyProducer } from '@lading/telemetry';
import { binaryParser, imageManifest, makeBlob } from '@lading/testing';
import { EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';

const logger = createLogger({ service: 'test', level: 'silent' });

async function open(dir: string): Promise<EmbeddedRegistry> {
  return createEmbeddedRegistry(parseConfig({ data: { dir }, log: { level: 'silent', access: false } }), logger);
}

describe('embedded registry', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-embedded-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('reports the open upload sessions on its metrics: one while an upload is open, none once it is cancelled', async () => {
    const tallies = createTallyProducer();
    const reader = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true, metricProducers: [tallies] });
    const provider = new MeterProvider({ readers: [reader] });
    const config = parseConfig({ data: { dir }, log: { level: 'silent', access: false } });
    const registry = await createEmbeddedRegistry(config, logger, { metrics: createRegistryMetrics(provider.getMeter('test'), tallies) });
    const openUploads = async () => {
      const { resourceMetrics } = await reader.collect();
      const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === METRIC_NAMES.uploadsOpen);
      return metric?.dataPoints[0]?.value;
    };
    try {
      expect(await openUploads()).toBe(0);
      const started = await request(registry.app).post('/v2/up/load/blobs/uploads/').expect(202);
      expect(await openUploads()).toBe(1);
      const location = new URL(String(started.headers.location), 'http://registry.invalid');
      await request(registry.app).delete(`${location.pathname}${location.search}`).expect(204);
      expect(await openUploads()).toBe(0);
    } finally {
      await registry.close();
      await provider.shutdown();
    }
  });

  it('starts the PGlite maintenance loop (PGlite has no autovacuum) and stops it on close', async () => {
    const registry = await open(dir);
    try {
      expect(registry.db.driverName).toBe('pglite');
      expect(registry.maintenance).not.toBeNull();
      // A fresh registry has nothing due (what a run picks is specified in libs/metadata's pglite-maintenance.spec.ts).
      expect(await registry.maintenance!.runNow()).toMatchObject({ tables: [], skippedByStop: 0 });
    } finally {
      await registry.close();
    }
    expect(await registry.maintenance!.runNow()).toEqual({ tables: [], skippedByStop: 0, ms: 0 });
  });

  it('keeps pushed images across a restart on the same data directory', async () => {
    const config = makeBlob('{"os":"linux"}');
    const layer = makeBlob(4096);
    const manifest = imageManifest(config, [layer]);
    const first = await open(dir);
    for (const blob of [config, layer]) {
      await request(first.app).post(`/v2/keep/me/blobs/uploads/?digest=${blob.digest}`).set('Content-Type', 'application/octet-stream').send(blob.data).expect(201);
    }
    await request(first.app).put('/v2/keep/me/manifests/v1').set('Content-Type', manifest.mediaType).send(manifest.body.toString()).expect(201);
    await first.close();

    const second = await open(dir);
    const got = await request(second.app).get('/v2/keep/me/manifests/v1');
    expect(got.status).toBe(200);
    expect(got.headers['docker-content-digest']).toBe(manifest.digest);
    const blob = await request(second.app).get(`/v2/keep/me/blobs/${layer.digest}`).buffer(true).parse(binaryParser);
    expect(Buffer.compare(blob.body as Buffer, layer.data)).toBe(0);
    expect((await request(second.app).get('/v2/_catalog')).body.repositories).toEqual(['keep/me']);
    await second.close();
  });

  it('delivers the events of a push on the bus, in order, with the API version header on every response', async () => {
    const registry = await open(dir);
    const seen: LadingEvent[] = [];
    registry.bus.subscribe((event) => {
      seen.push(event);
    });
    const config = makeBlob('{"os":"linux"}');
    const manifest = imageManifest(config, []);
    const upload = await request(registry.app).post(`/v2/ev/blobs/uploads/?digest=${config.digest}`).set('Content-Type', 'application/octet-stream').send(config.data);
    expect(upload.headers['docker-distribution-api-version']).toBe('registry/2.0');
    await request(registry.app).put('/v2/ev/manifests/latest').set('Content-Type', manifest.mediaType).send(manifest.body.toString()).expect(201);
    await registry.flushEvents();
    await registry.bus.close();
    expect(seen.map((e) => e.type)).toEqual([
      'io.lading.repository.created',
      'io.lading.blob.uploaded',
      'io.lading.manifest.pushed',
      'io.lading.tag.updated',
    ]);
    expect(seen.map((e) => e.sequence)).toEqual(['00000000000000000001', '00000000000000000002', '00000000000000000003', '00000000000000000004']);
    expect(new Set(seen.map((e) => e.id)).size).toBe(4);
    expect(seen[2]).toMatchObject({ specversion: '1.0', subject: `ev@${manifest.digest}`, partitionkey: 'ev', data: { repository: 'ev', digest: manifest.digest, tag: 'latest' } });
    const pending = await registry.db.query(`SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL`);
    expect(pending.rows[0]).toEqual({ n: 0 });
    await registry.close();
  });

  it('writes no event for a change that was refused', async () => {
    const registry = await open(dir);
    const manifest = imageManifest(makeBlob('{}'), [makeBlob(10)]);
    const res = await request(registry.app).put('/v2/refused/manifests/v1').set('Content-Type', manifest.mediaType).send(manifest.body.toString());
    expect(res.status).toBe(400);
    const rows = await registry.db.query(`SELECT count(*)::int AS n FROM outbox`);
    expect(rows.rows[0]).toEqual({ n: 0 });
    expect((await request(registry.app).get('/v2/_catalog')).body.repositories).toEqual([]);
    await registry.close();
  });
});
