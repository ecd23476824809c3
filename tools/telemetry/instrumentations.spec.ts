/**
 * Proves how OpenTelemetry gets into a Lading process: a first import that calls `startTelemetry` is enough for
 * the http, express, undici, pg and kafkajs instrumentations to patch under `node --import tsx`, pino lines carry
 * the trace ids, the standard OTEL_* variables choose protocol and sampler, and nothing is exported (or even
 * attempted) when nothing is configured. Uses the real Postgres and Kafka of tools/infra.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { infraSettings } from '@lading/testing';
import { OtlpReceiver, ReceivedSpan, SPAN_KIND, startOtlpReceiver } from './otlp-receiver';
import { RunningProcess, runEntry } from './probe-runner';

const PROBE = 'tools/telemetry/instrumentation-probe.ts';

function traceIdOf(traceparent: unknown): string {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(String(traceparent));
  if (!m) throw new Error(`not a traceparent: ${String(traceparent)}`);
  return m[1];
}

function logLines(run: RunningProcess): Array<Record<string, unknown>> {
  return run.lines.flatMap((l) => {
    try {
      const parsed = JSON.parse(l) as Record<string, unknown>;
      return 'msg' in parsed ? [parsed] : [];
    } catch {
      return [];
    }
  });
}

describe('telemetry in a process started with node --import tsx', () => {
  let receiver: OtlpReceiver;
  beforeEach(async () => {
    receiver = await startOtlpReceiver();
  });
  afterEach(async () => {
    await receiver.close();
  });

  it('exports spans of http, express, undici, pg and kafkajs over OTLP http/protobuf; logs and metrics follow the request', async () => {
    const infra = infraSettings();
    const run = runEntry(PROBE, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      LADING_DATABASE_URL: infra.databaseUrl,
      LADING_KAFKA_BROKERS: infra.kafkaBrokers.join(','),
      LADING_KAFKA_TOPIC: `lading.telemetry-probe.${randomBytes(4).toString('hex')}`,
      LADING_TELEMETRY_METRICSADDR: '127.0.0.1:0',
    });
    try {
      const done = await run.report('done');
      expect(done.tracing).toBe(true);
      expect(done.httpPatched).toBe(true);
      const traceId = traceIdOf(done.workTraceparent);
      // The consumer's span continues the trace through the Kafka message's headers.
      expect(traceIdOf(done.consumerTraceparent)).toBe(traceId);

      const metrics = await fetch(String(done.metricsUrl)).then((r) => r.text());
      expect(metrics).toMatch(/^registry_http_requests_total\{method="GET",route="work",code="200"\} 1$/m);
      expect(metrics).toMatch(/^registry_http_requests_total\{method="GET",route="other",code="404"\} 1$/m);
      expect(metrics).toMatch(/^registry_http_request_duration_seconds_count\{method="GET",route="work"\} 1$/m);
      expect(metrics).toMatch(/^registry_http_in_flight_requests\{route="work"\} 0$/m);
      expect(await run.stop()).toBe(0);

      await receiver.waitFor((s) => s.kind === SPAN_KIND.consumer && s.traceId === traceId, 10_000, 'the kafkajs consumer span');
      const spans = receiver.trace(traceId);
      const from = (scope: string, kind?: number) => spans.filter((s) => s.scope === `@opentelemetry/instrumentation-${scope}` && (kind === undefined || s.kind === kind));
      const describe = (list: ReceivedSpan[]) => list.map((s) => `${s.scope} ${s.name}`).join('\n');
      expect(spans.every((s) => s.service === 'lading-probe')).toBe(true);
      const server = from('http', SPAN_KIND.server).find((s) => s.attributes['http.route'] === 'work');
      expect({ name: server?.name, spans: describe(spans) }).toEqual({ name: 'GET work', spans: expect.any(String) });
      expect(from('express').length).toBeGreaterThan(0);
      expect(from('undici', SPAN_KIND.client).length).toBeGreaterThanOrEqual(2);
      expect(from('pg').map((s) => s.attributes['db.query.text'] ?? s.attributes['db.statement'])).toContain('SELECT 1 AS one');
      expect(from('kafkajs', SPAN_KIND.producer)).toHaveLength(1);
      expect(from('kafkajs', SPAN_KIND.consumer)).toHaveLength(1);

      // The failed request's server span says which OCI error it answered.
      const failed = spans.find((s) => s.kind === SPAN_KIND.server && s.attributes['url.path'] === '/fail');
      expect(failed?.attributes['oci.error.code']).toBe('MANIFEST_UNKNOWN');

      // Log lines written inside spans carry that span's ids; secrets in them are redacted.
      const handled = logLines(run).find((l) => l.msg === 'handled work');
      expect(handled?.trace_id).toBe(traceId);
      expect(spans.map((s) => s.spanId)).toContain(handled?.span_id);
      expect(JSON.stringify(handled)).not.toContain('probe-secret-token-123');
      const consumedLine = logLines(run).find((l) => l.msg === 'consumed the message');
      expect(consumedLine?.trace_id).toBe(traceId);
      expect(receiver.requests['traces application/x-protobuf']).toBeGreaterThan(0);
    } finally {
      await run.stop();
    }
  });

  it('speaks OTLP http/json when OTEL_EXPORTER_OTLP_PROTOCOL says so', async () => {
    const run = runEntry(PROBE, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', LADING_TELEMETRY_METRICSADDR: 'off' });
    try {
      const done = await run.report('done');
      expect(await run.stop()).toBe(0);
      const traceId = traceIdOf(done.workTraceparent);
      expect(receiver.requests['traces application/json']).toBeGreaterThan(0);
      expect(receiver.requests['traces application/x-protobuf']).toBeUndefined();
      expect(receiver.trace(traceId).map((s) => s.name)).toEqual(expect.arrayContaining(['GET work', 'probe.drive']));
    } finally {
      await run.stop();
    }
  });

  it('honours OTEL_TRACES_SAMPLER: always_off records no span, yet the process serves as usual', async () => {
    const run = runEntry(PROBE, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER: 'always_off', LADING_TELEMETRY_METRICSADDR: 'off' });
    try {
      const done = await run.report('done');
      expect(done.tracing).toBe(true);
      expect(await run.stop()).toBe(0);
      expect(receiver.spans()).toEqual([]);
      // The exporter exists (the shutdown flush may still post an empty batch), but no span was ever sampled.
      expect(logLines(run).find((l) => l.msg === 'handled work')?.trace_flags).toBe('00');
    } finally {
      await run.stop();
    }
  });

  it('exports nothing and connects nowhere when no OTEL_* variable is set; a metrics port already taken is logged, not fatal', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const run = runEntry(PROBE, { LADING_TELEMETRY_METRICSADDR: `127.0.0.1:${(taken.address() as AddressInfo).port}` });
    try {
      const done = await run.report('done');
      expect(done.tracing).toBe(false);
      // Nothing to export, nothing patched: untraced requests pay nothing for tracing.
      expect(done.httpPatched).toBe(false);
      expect(done.metricsUrl).toBeNull();
      expect(logLines(run).find((l) => l.msg === 'no metrics port')).toMatchObject({ level: 40, err: { code: 'EADDRINUSE' } });
      expect(await run.stop()).toBe(0);
      const exited = await run.report('exited');
      // The probe's own three requests (to /work, /leaf and /fail) and nothing else: no exporter tried to connect.
      const outgoing = exited.outgoing as string[];
      expect(outgoing).toHaveLength(3);
      expect(outgoing.every((o) => o.includes(String(done.base).replace('http://', '')))).toBe(true);
      // Without a trace there are no trace ids to log.
      expect(logLines(run).find((l) => l.msg === 'handled work')).not.toHaveProperty('trace_id');
    } finally {
      await run.stop();
      taken.close();
    }
  });
});
