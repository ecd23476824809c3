import express from 'express';
import request from 'supertest';
import { context, trace } from '@opentelemetry/api';
import { createHttpTelemetry, markOciError } from './http-telemetry';
import type { RegistryMetrics } from './registry-metrics';
import { startTestRegistryMetrics } from '../test/test-metrics';
import { TestTracing, startTestTracing } from '../test/test-tracing';

const ENVELOPE = JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown to registry', detail: null }] });

function appWith(metrics: RegistryMetrics) {
  const app = express();
  // Stands in for the http instrumentation: a server span active around the request.
  app.use((_req, res, next) => {
    const span = trace.getTracer('test').startSpan('server');
    res.once('finish', () => span.end());
    context.with(trace.setSpan(context.active(), span), next);
  });
  app.use(createHttpTelemetry({ metrics, routeOf: (req) => (req.path.startsWith('/v2/') ? (req.path.includes('/manifests/') ? 'manifest' : 'blob') : undefined) }));
  // As the registry's one error renderer does: mark the code, then write the envelope.
  app.get('/v2/team/app/manifests/:ref', (_req, res) => {
    markOciError(res, 'MANIFEST_UNKNOWN');
    res.status(404).type('application/json').end(ENVELOPE);
  });
  app.get('/v2/team/app/blobs/:digest', (_req, res) => {
    res.send('blob');
  });
  app.get('/boom', () => {
    throw new Error('no route');
  });
  return app;
}

describe('createHttpTelemetry', () => {
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = startTestTracing();
  });
  afterAll(async () => {
    await tracing.stop();
  });

  it('counts requests by method, route template and status, times them, and returns in-flight to zero', async () => {
    const { metrics, scrape, shutdown } = startTestRegistryMetrics();
    const app = appWith(metrics);
    await request(app).get('/v2/team/app/blobs/sha256:aaaa').expect(200);
    await request(app).get('/v2/team/app/blobs/sha256:bbbb').expect(200);
    await request(app).get('/v2/team/app/manifests/latest').expect(404);
    await request(app).get('/elsewhere/123').expect(404);
    const text = await scrape();
    expect(text).toMatch(/^registry_http_requests_total\{method="GET",route="blob",code="200"\} 2$/m);
    expect(text).toMatch(/^registry_http_requests_total\{method="GET",route="manifest",code="404"\} 1$/m);
    expect(text).toMatch(/^registry_http_requests_total\{method="GET",route="other",code="404"\} 1$/m);
    expect(text).toMatch(/^registry_http_request_duration_seconds_count\{method="GET",route="blob"\} 2$/m);
    expect(text).toMatch(/^registry_http_in_flight_requests\{route="blob"\} 0$/m);
    // Kept as tallies, they still scrape as a counter and a gauge.
    expect(text).toMatch(/^# TYPE registry_http_requests_total counter$/m);
    expect(text).toMatch(/^# TYPE registry_http_in_flight_requests gauge$/m);
    expect(text).toMatch(/^lading_http_errors_total\{route="manifest",oci_code="MANIFEST_UNKNOWN"\} 1$/m);
    // Raw paths never become labels.
    expect(text).not.toContain('sha256:aaaa');
    await shutdown();
  });

  it('counts a request once when an outer app and a mounted service app both use the middleware (the embedded mode)', async () => {
    const { metrics, scrape, shutdown } = startTestRegistryMetrics();
    const outer = express();
    outer.use(createHttpTelemetry({ metrics, routeOf: () => 'blob' }));
    outer.use(appWith(metrics));
    await request(outer).get('/v2/team/app/blobs/sha256:aaaa').expect(200);
    const text = await scrape();
    expect(text).toMatch(/^registry_http_requests_total\{method="GET",route="blob",code="200"\} 1$/m);
    expect(text).toMatch(/^registry_http_in_flight_requests\{route="blob"\} 0$/m);
    await shutdown();
  });

  it('puts the OCI error code of an error response on the server span, and nothing on a success', async () => {
    const { metrics, shutdown } = startTestRegistryMetrics();
    const app = appWith(metrics);
    await request(app).get('/v2/team/app/manifests/latest').expect(404);
    await request(app).get('/v2/team/app/blobs/sha256:aaaa').expect(200);
    const [failed, ok] = tracing.spans().filter((s) => s.name === 'server').slice(-2);
    expect(failed.attributes).toMatchObject({ 'oci.error.code': 'MANIFEST_UNKNOWN', 'http.route': 'manifest' });
    expect(ok.attributes['oci.error.code']).toBeUndefined();
    await shutdown();
  });

  it('counts the OCI error of a HEAD too (no envelope is written), and no error for a success', async () => {
    const { metrics, scrape, shutdown } = startTestRegistryMetrics();
    const app = appWith(metrics);
    await request(app).head('/v2/team/app/manifests/latest').expect(404);
    await request(app).get('/v2/team/app/blobs/sha256:aaaa').expect(200);
    const text = await scrape();
    expect(text).toMatch(/^lading_http_errors_total\{route="manifest",oci_code="MANIFEST_UNKNOWN"\} 1$/m);
    expect(text).not.toMatch(/^lading_http_errors_total\{route="blob"/m);
    await shutdown();
  });

  it('counts a response cut off before it finished as 499 and returns in-flight to zero', async () => {
    const { metrics, scrape, shutdown } = startTestRegistryMetrics();
    const app = express();
    app.use(createHttpTelemetry({ metrics, routeOf: () => 'blob' }));
    app.get('/cut', (_req, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('partial');
      setTimeout(() => res.destroy(), 20);
    });
    await request(app).get('/cut').catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const text = await scrape();
    expect(text).toMatch(/^registry_http_requests_total\{method="GET",route="blob",code="499"\} 1$/m);
    expect(text).toMatch(/^registry_http_in_flight_requests\{route="blob"\} 0$/m);
    await shutdown();
  });
});

describe('createRegistryMetrics', () => {
  it('exposes every instrument under the name dashboards query, and reads gauges from their sources at scrape time', async () => {
    const { metrics, scrape, shutdown } = startTestRegistryMetrics();
    let pending = 3;
    const stop = metrics.observeOutbox(async () => ({ backlog: pending, oldestUnpublishedAgeSeconds: 1.5, parked: 1 }));
    metrics.observeRelay(() => ({ published: 8, publishFailures: 1, refused: 3, parked: 1 }));
    metrics.observeGcQueues(() => ({ queues: { blob: { size: 4, due: 0, overdue: 0 }, manifest: { size: 0, due: 0, overdue: 0 } }, tombstones: {}, pins: 0 }));
    metrics.observeGcCounters(() => ({ reviews: {}, postponed: {}, deleted: {}, bytesFreed: 2048, unparseable: 0, storageErrors: 0, errors: 0, retentionReported: 0 }));
    metrics.observeOpenUploads(() => {
      throw new Error('database down');
    });
    metrics.storageActionSeconds.record(0.02, { driver: 's3', action: 'stat' });
    metrics.notificationsEvents.add(1, { type: 'io.lading.manifest.pushed' });
    metrics.webhookDeliveries.add(1, { result: 'dead_lettered' });
    metrics.cacheRequests.add(1, { cache: 'manifest', result: 'hit' });
    metrics.uploadsStarted.add(1);
    let text = await scrape();
    expect(text).toMatch(/^lading_outbox_backlog 3$/m);
    expect(text).toMatch(/^registry_notifications_pending 3$/m);
    expect(text).toMatch(/^lading_outbox_oldest_unpublished_age_seconds 1.5$/m);
    expect(text).toMatch(/^lading_outbox_published_total 8$/m);
    expect(text).toMatch(/^lading_outbox_publish_failures_total 1$/m);
    expect(text).toMatch(/^lading_outbox_refused_total 3$/m);
    expect(text).toMatch(/^lading_outbox_parked 1$/m);
    expect(text).toMatch(/^lading_gc_queue_size\{queue="blob"\} 4$/m);
    expect(text).toMatch(/^registry_storage_action_seconds_count\{driver="s3",action="stat"\} 1$/m);
    expect(text).toMatch(/^registry_notifications_events_total\{type="io.lading.manifest.pushed"\} 1$/m);
    expect(text).toMatch(/^lading_webhook_deliveries_total\{result="dead_lettered"\} 1$/m);
    expect(text).toMatch(/^lading_gc_bytes_freed_total 2048$/m);
    expect(text).toMatch(/^lading_cache_requests_total\{cache="manifest",result="hit"\} 1$/m);
    expect(text).toMatch(/^lading_upload_sessions_started_total 1$/m);
    // A source that fails skips its sample; the scrape still answers.
    expect(text).not.toMatch(/^lading_upload_sessions_open /m);
    pending = 0;
    text = await scrape();
    expect(text).toMatch(/^lading_outbox_backlog 0$/m);
    // Once unregistered the source is not read again (the exporter keeps showing the last value it saw).
    stop();
    pending = 9;
    text = await scrape();
    expect(text).not.toMatch(/^lading_outbox_backlog 9$/m);
    await shutdown();
  });
});
