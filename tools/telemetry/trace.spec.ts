/**
 * Traces of the embedded registry, exported over OTLP to an in-test receiver while a small image is pushed:
 * each push request is a server span of `lading-registry` with express spans under it, routes are named by the
 * route table, log lines carry the request's trace id, and a failed request's span carries its OCI error code.
 * The embedded mode has PGlite (no pg spans) and the in-process bus (no Kafka spans); the distributed mode's
 * end-to-end trace is checked by trace-distributed.check.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RegistryClient, createRegistryClient, headerOf } from '@lading/client';
import { freePort, imageManifest, makeBlob } from '@lading/testing';
import { OtlpReceiver, ReceivedSpan, SPAN_KIND, startOtlpReceiver } from './otlp-receiver';
import { RunningProcess, runEntry } from './probe-runner';

/** The entry under test; becomes services/embedded/src/main.ts once main.ts starts telemetry itself. */
const ENTRY = 'services/embedded/src/main.ts';

async function waitForReady(base: string, run: RunningProcess): Promise<void> {
  // PGlite's first start (migrations) takes a while on a busy machine.
  for (let i = 0; i < 1200; i++) {
    if (run.child.exitCode !== null) throw new Error(`the registry exited: ${run.stderr().slice(-2000)}`);
    const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the registry did not become ready: ${run.stderr().slice(-2000)}`);
}


describe('tracing the embedded registry', () => {
  let receiver: OtlpReceiver;
  let dataDir: string;
  let run: RunningProcess;
  let port = 0;
  let base = '';
  let client: RegistryClient;

  beforeAll(async () => {
    // A port the kernel just handed out and took back: free, unlike a random guess in the ephemeral range.
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    receiver = await startOtlpReceiver();
    dataDir = mkdtempSync(path.join(tmpdir(), 'lading-trace-'));
    run = runEntry(ENTRY, {
      LADING_HTTP_ADDR: `127.0.0.1:${port}`,
      LADING_DATA_DIR: dataDir,
      LADING_TELEMETRY_METRICSADDR: 'off',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    await waitForReady(base, run);
    client = createRegistryClient({ url: base });
  }, 150_000);
  afterAll(async () => {
    await client?.close();
    await run?.stop();
    await receiver?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('makes each push request a lading-registry server span named by its route, with express spans and trace ids in its log lines', async () => {
    const repo = 'trace/app';
    const config = makeBlob('{"architecture":"amd64","os":"linux"}');
    const layer = makeBlob(2048);
    for (const blob of [config, layer]) {
      const started = await client.send('POST', `/v2/${repo}/blobs/uploads/`);
      expect(started.status).toBe(202);
      const location = new URL(headerOf(started.headers, 'location') ?? '', base);
      location.searchParams.set('digest', blob.digest);
      const put = await client.send('PUT', location.toString(), { body: blob.data, headers: { 'content-type': 'application/octet-stream' } });
      expect(put.status).toBe(201);
    }
    const manifest = imageManifest(config, [layer]);
    const put = await client.putManifest(repo, 'v1', manifest);
    expect(put.status).toBe(201);

    const manifestSpan = await receiver.waitFor(
      (s) => s.kind === SPAN_KIND.server && s.attributes['http.request.method'] === 'PUT' && s.attributes['http.route'] === 'manifest',
      15_000,
      'the manifest PUT server span',
    );
    expect(manifestSpan).toMatchObject({ service: 'lading-registry', name: 'PUT manifest', parentSpanId: '' });
    expect(manifestSpan.attributes['http.response.status_code']).toBe(201);
    const trace = receiver.trace(manifestSpan.traceId);
    expect(trace.every((s: ReceivedSpan) => s.service === 'lading-registry')).toBe(true);
    expect(trace.filter((s) => s.scope === '@opentelemetry/instrumentation-express').length).toBeGreaterThan(0);
    // PGlite is not pg: the embedded mode has no database client spans.
    expect(receiver.spans().filter((s) => s.scope === '@opentelemetry/instrumentation-pg')).toEqual([]);

    await receiver.waitFor((s) => s.kind === SPAN_KIND.server && s.attributes['http.route'] === 'uploadStart', 5_000, 'the upload POST span');
    const uploadPutSpans = () =>
      receiver.spans().filter((s) => s.kind === SPAN_KIND.server && s.attributes['http.route'] === 'upload' && s.attributes['http.request.method'] === 'PUT');
    // Spans arrive in export batches: on a busy machine the two PUTs may come in different ones.
    for (const until = Date.now() + 5_000; uploadPutSpans().length < 2 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
    const uploadPuts = uploadPutSpans();
    expect(uploadPuts).toHaveLength(2);
    // Raw paths never name a span (digests and upload ids would make every name unique).
    expect(receiver.spans().filter((s) => s.kind === SPAN_KIND.server).map((s) => s.name)).not.toContainEqual(expect.stringContaining('sha256'));

    const findAccessLine = () =>
      run.lines
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        })
        .find((l) => l.msg === 'request' && l.method === 'PUT' && String(l.path).includes('/manifests/'));
    // The access line is written when the response finishes and reaches us through the child's stdout pipe, which on
    // a busy machine can come after the span's export: wait for the line, then check its trace id.
    for (const until = Date.now() + 5_000; !findAccessLine() && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
    const accessLine = findAccessLine();
    expect(accessLine).toBeDefined();
    expect(accessLine?.trace_id).toBe(manifestSpan.traceId);
  });

  it('puts the OCI error code on the span of a failed request', async () => {
    const res = await client.getManifest('trace/app', 'missing');
    expect(res.status).toBe(404);
    const failed = await receiver.waitFor(
      (s) => s.kind === SPAN_KIND.server && s.attributes['url.path'] === '/v2/trace/app/manifests/missing',
      15_000,
      'the failed GET server span',
    );
    expect(failed.attributes['oci.error.code']).toBe('MANIFEST_UNKNOWN');
    expect(failed.attributes['http.response.status_code']).toBe(404);
    expect(failed.name).toBe('GET manifest');
  });
});
