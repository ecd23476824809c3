/**
 * The end-to-end trace of a push through the distributed cluster, and the metrics it moves (issue 7). The last stage
 * of tools/e2e-distributed.sh; run alone under the cluster lock:
 *
 *   flock /tmp/lading-cluster.lock node --import tsx tools/telemetry/trace-distributed.check.ts
 *
 * It starts its own OTLP/HTTP receiver on 127.0.0.1, brings tools/cluster down and up again with every process
 * exporting spans to it (OTEL_TRACES_EXPORTER=otlp, http/json), subscribes a webhook receiver of its own to a fresh
 * repository, and pushes an image through the load balancer as a traced client would: every request carries one
 * client `traceparent`. It then checks that this one trace id covers the gateway's, blob's and manifest's server
 * spans (the services' under the gateway's client spans), their Postgres queries and MinIO calls, the outbox relay's
 * publish of the push's events, and the GC's and the webhooks service's `event.handle` consumer spans, PARENTED by
 * the traceparent stored with the outbox row (the push's own span) and LINKED to the kafkajs delivery span; that the
 * webhook delivery is in the trace; and that a failed request's span carries `oci.error.code`. It scrapes /metrics
 * of every process (API port + 1000) before and after the pushes and pulls and checks the named series moved.
 * Prints one line per check and `telemetry: N passed, M failed`; exits 1 on a failure; brings the cluster down.
 * It runs on a database of its own (created on the tools/infra server, dropped at the end), so the admin it sets up
 * is the one that logs in.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { createRegistryClient } from '@lading/client';
import { METRIC_NAMES, SPAN_ATTRIBUTES, SPAN_NAMES } from '@lading/telemetry';
import { createThrowawayDatabase, infraSettings } from '@lading/testing';
import { startTestReceiver } from '@lading/webhooks/test/test-receiver';
import { pushImage } from '../webhooks-soak/push-image';
import { clusterPorts } from '../cluster/ports';
import { OtlpReceiver, ReceivedSpan, SPAN_KIND, startOtlpReceiver } from './otlp-receiver';

const ROOT = path.resolve(__dirname, '..', '..');
const CLUSTER = path.join(ROOT, 'tools', 'cluster', 'cluster');
/** The cluster's processes (not its load balancer) and their API ports; each serves /metrics on its port + 1000. */
const PROCESSES: Record<string, number> = Object.fromEntries(Object.entries(clusterPorts(ROOT)).filter(([name]) => name !== 'nginx'));
/** Processes that run an outbox relay (every one that opens the process parts). */
const RELAYS = ['blob-1', 'blob-2', 'manifest-1', 'gc-1', 'webhooks-1'];

const run = promisify(execFile);
let passed = 0;
let failed = 0;

function check(name: string, ok: boolean, detail = ''): void {
  if (ok) passed++;
  else failed++;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}\n`);
}

async function cluster(command: 'up' | 'down', env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(CLUSTER, [command], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 300_000, maxBuffer: 1 << 20 });
  return stdout;
}

/** One scrape: `name{labels}` → value, for every sample line. */
type Scrape = Map<string, number>;

async function scrape(port: number): Promise<Scrape> {
  const samples: Scrape = new Map();
  try {
    const text = await (await fetch(`http://127.0.0.1:${port + 1000}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)/.exec(line);
      if (m && !line.startsWith('#')) samples.set(m[1], Number(m[2]));
    }
  } catch {
    // An unreachable debug port reads as no samples: the checks below name what is missing.
  }
  return samples;
}

async function scrapeAll(): Promise<Record<string, Scrape>> {
  const entries = await Promise.all(Object.entries(PROCESSES).map(async ([name, port]) => [name, await scrape(port)] as const));
  return Object.fromEntries(entries);
}

/** The sum of a metric's samples whose labels contain every `label="value"` of `labels`. */
function total(samples: Scrape | undefined, metric: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, value] of samples ?? []) {
    const name = key.replace(/\{.*$/, '');
    if (name !== metric) continue;
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) sum += value;
  }
  return sum;
}

const has = (samples: Scrape | undefined, metric: string) => [...(samples?.keys() ?? [])].some((k) => k.replace(/\{.*$/, '') === metric);

async function waitFor(receiver: OtlpReceiver, predicate: (s: ReceivedSpan) => boolean, ms: number): Promise<ReceivedSpan | undefined> {
  return receiver.waitFor(predicate, ms).catch(() => undefined);
}

async function main(): Promise<void> {
  const serverUrl = infraSettings().databaseUrl;
  const database = await createThrowawayDatabase('trace', { serverUrl });
  const databaseUrl = new URL(database.url);
  const receiver = await startOtlpReceiver();
  const hook = await startTestReceiver();
  const adminUser = 'trace-admin';
  const adminPassword = randomBytes(18).toString('hex');
  try {
    await cluster('down').catch(() => '');
    const out = await cluster('up', {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      LADING_WEBHOOKS_ALLOWLIST: '127.0.0.1',
      LADING_ADMIN_USER: adminUser,
      LADING_ADMIN_PASSWORD: adminPassword,
      LADING_DATABASE_URL: databaseUrl.toString(),
    });
    const base = /LADING_URL=(\S+)/.exec(out)?.[1] ?? '';
    if (!base) throw new Error(`cluster up printed no LADING_URL:\n${out}`);
    const traceId = randomBytes(16).toString('hex');
    const traceparent = `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
    const repository = `trace-check/app${Date.now()}`;

    const authorization = `Basic ${Buffer.from(`${adminUser}:${adminPassword}`).toString('base64')}`;
    const subscribed = await fetch(`${base}/admin/v1/webhooks`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'trace-check', namespace: repository, url: `${hook.url}/ce` }),
    });
    check('a webhook subscription is created through the admin API', subscribed.status === 201, `HTTP ${subscribed.status} ${subscribed.status === 201 ? '' : await subscribed.text()}`);

    const before = await scrapeAll();
    // Every request of this client carries the one client traceparent.
    const client = createRegistryClient({ url: base, headers: { traceparent } });
    const manifest = await pushImage(client, repository, 'v1');
    // Pulls: the manifest by tag and by digest, and each blob.
    for (const reference of ['v1', manifest.digest]) await client.getManifest(repository, reference);
    const layers = (JSON.parse(manifest.body.toString()) as { config: { digest: string }; layers: { digest: string }[] });
    for (const digest of [layers.config.digest, ...layers.layers.map((l) => l.digest)]) await client.getBlob(repository, digest);
    const missing = await client.getManifest(repository, 'missing');
    await client.close();

    // The consumers and the webhook delivery come last: wait for them, then for the export of what came before.
    const consumerSpan = (service: string) =>
      waitFor(receiver, (s) => s.traceId === traceId && s.service === service && s.name === SPAN_NAMES.eventHandle && s.attributes[SPAN_ATTRIBUTES.repository] === repository, 60_000);
    const [gcHandle, webhooksHandle] = await Promise.all([consumerSpan('lading-gc'), consumerSpan('lading-webhooks')]);
    const deliver = await waitFor(receiver, (s) => s.traceId === traceId && s.name === SPAN_NAMES.webhookDeliver, 30_000);
    const failedSpan = await waitFor(receiver, (s) => s.traceId === traceId && s.attributes['oci.error.code'] === 'MANIFEST_UNKNOWN', 15_000);
    await new Promise((r) => setTimeout(r, 1500));
    const after = await scrapeAll();
    const spans = receiver.trace(traceId);
    const byId = new Map(spans.map((s) => [s.spanId, s] as const));
    const server = (service: string) => spans.filter((s) => s.service === service && s.kind === SPAN_KIND.server);
    process.stdout.write(`trace ${traceId}: ${spans.length} spans from ${[...new Set(spans.map((s) => s.service))].sort().join(', ')}\n`);

    // ---- the trace
    const gatewayNames = server('lading-gateway').map((s) => s.name);
    check('lading-gateway server spans: POST uploadStart and PUT manifest', gatewayNames.includes('POST uploadStart') && gatewayNames.includes('PUT manifest'), gatewayNames.slice(0, 6).join(', '));
    const blobServer = server('lading-blob');
    check('lading-blob server spans, each under a lading-gateway client span', blobServer.length > 0 && blobServer.every((s) => byId.get(s.parentSpanId)?.service === 'lading-gateway'), `${blobServer.length} spans`);
    const manifestServer = server('lading-manifest');
    check(
      'lading-manifest server spans, each under a lading-gateway client span',
      manifestServer.some((s) => s.name === 'PUT manifest') && manifestServer.every((s) => byId.get(s.parentSpanId)?.service === 'lading-gateway'),
      manifestServer.map((s) => s.name).slice(0, 4).join(', '),
    );
    const pg = (service: string) => spans.filter((s) => s.service === service && s.scope === '@opentelemetry/instrumentation-pg').length;
    check('Postgres query spans from lading-blob and lading-manifest', pg('lading-blob') > 0 && pg('lading-manifest') > 0, `blob ${pg('lading-blob')}, manifest ${pg('lading-manifest')}`);
    const storage = spans.filter((s) => s.service === 'lading-blob' && s.name.startsWith(SPAN_NAMES.storagePrefix));
    const storageNames = new Set(storage.map((s) => s.name));
    check(
      'MinIO storage spans from lading-blob: the upload written and committed (writeUpload + commitUpload, or writeObject + commitObject for a whole body), driver s3',
      ((storageNames.has('storage.writeUpload') && storageNames.has('storage.commitUpload')) || (storageNames.has('storage.writeObject') && storageNames.has('storage.commitObject'))) &&
        storage.every((s) => s.attributes['storage.driver'] === 's3'),
      [...storageNames].join(', '),
    );
    const ownSpan = (service: string, name: string) => spans.some((s) => s.service === service && s.name === name);
    check('digest.compute span from lading-blob, manifest.validate span from lading-manifest', ownSpan('lading-blob', SPAN_NAMES.digestCompute) && ownSpan('lading-manifest', SPAN_NAMES.manifestValidate));
    const published = spans.filter((s) => s.name === SPAN_NAMES.outboxPublish && s.attributes[SPAN_ATTRIBUTES.repository] === repository);
    const publishedTypes = new Set(published.map((s) => String(s.attributes[SPAN_ATTRIBUTES.eventType])));
    check(
      "the outbox relay's outbox.publish spans for the push's events (blob.uploaded, manifest.pushed)",
      [...publishedTypes].some((t) => t.endsWith('blob.uploaded')) && [...publishedTypes].some((t) => t.endsWith('manifest.pushed')) && published.every((s) => s.kind === SPAN_KIND.producer),
      [...publishedTypes].join(', '),
    );
    const consumer = (span: ReceivedSpan | undefined, service: string) => {
      const parent = span ? byId.get(span.parentSpanId) : undefined;
      check(
        `${service}'s event.handle: CONSUMER, parented by the push's span (the outbox row's traceparent), linked to the kafkajs delivery`,
        !!span && span.kind === SPAN_KIND.consumer && !!parent && parent.service !== service && span.links.length > 0,
        span ? `parent ${parent ? `${parent.service} ${parent.name}` : span.parentSpanId}, ${span.links.length} link(s), event ${span.attributes[SPAN_ATTRIBUTES.eventType]}` : 'no span in the trace',
      );
    };
    consumer(gcHandle, 'lading-gc');
    consumer(webhooksHandle, 'lading-webhooks');
    check(
      "lading-webhooks' webhook.deliver span in the push's trace, naming no URL",
      !!deliver && deliver.service === 'lading-webhooks' && !Object.values(deliver.attributes).some((v) => String(v).includes(hook.url)),
      deliver ? `result ${deliver.attributes['lading.webhook.result']}` : 'no span',
    );
    check('the webhook receiver got the push', hook.requests.some((r) => r.path === '/ce' && r.body.includes(manifest.digest)), `${hook.requests.length} request(s)`);
    check(
      "a failed request's server span carries oci.error.code MANIFEST_UNKNOWN",
      missing.status === 404 && !!failedSpan && failedSpan.kind === SPAN_KIND.server,
      failedSpan ? `${failedSpan.service} ${failedSpan.name}` : `HTTP ${missing.status}, no span with the code`,
    );

    // ---- the metrics
    const moved = (name: string, processes: string[], metric: string, labels: Record<string, string> = {}) => {
      const b = processes.reduce((n, p) => n + total(before[p], metric, labels), 0);
      const a = processes.reduce((n, p) => n + total(after[p], metric, labels), 0);
      check(name, a > b, `${b} -> ${a}`);
    };
    for (const group of [['gateway-1', 'gateway-2'], ['blob-1', 'blob-2'], ['manifest-1']]) {
      moved(`${METRIC_NAMES.httpRequests} moved on ${group.join('+')}`, group, METRIC_NAMES.httpRequests);
      moved(`${METRIC_NAMES.httpRequestDuration} moved on ${group.join('+')}`, group, `${METRIC_NAMES.httpRequestDuration}_count`);
    }
    moved(`${METRIC_NAMES.httpRequests}{route="manifest",code="404"} moved (the failed pull)`, ['gateway-1', 'gateway-2'], METRIC_NAMES.httpRequests, { route: 'manifest', code: '404' });
    moved(`${METRIC_NAMES.storageActionSeconds}{driver="s3"} moved on blob-1+blob-2`, ['blob-1', 'blob-2'], `${METRIC_NAMES.storageActionSeconds}_count`, { driver: 's3' });
    moved(`${METRIC_NAMES.notificationsEvents} moved (the relays)`, RELAYS, METRIC_NAMES.notificationsEvents);
    moved(`${METRIC_NAMES.outboxPublished} moved (the relays)`, RELAYS, METRIC_NAMES.outboxPublished);
    const backlogMissing = RELAYS.filter((p) => !has(after[p], METRIC_NAMES.outboxBacklog));
    check(`${METRIC_NAMES.outboxBacklog} exported by every relay process`, backlogMissing.length === 0, backlogMissing.length ? `missing on ${backlogMissing.join(', ')}` : `now ${total(after['blob-1'], METRIC_NAMES.outboxBacklog)}`);
    moved(`${METRIC_NAMES.webhookDeliveries}{result="delivered"} moved on webhooks-1`, ['webhooks-1'], METRIC_NAMES.webhookDeliveries, { result: 'delivered' });
    moved(`${METRIC_NAMES.cacheRequests}{cache="manifest"} moved on manifest-1 (the pulls)`, ['manifest-1'], METRIC_NAMES.cacheRequests, { cache: 'manifest' });
    moved(`${METRIC_NAMES.gcQueueSize}{queue="blob"} moved on gc-1 (the pushed blobs queued for review)`, ['gc-1'], METRIC_NAMES.gcQueueSize, { queue: 'blob' });
  } finally {
    await cluster('down').catch((err) => process.stderr.write(`cluster down failed: ${(err as Error).message}\n`));
    await hook.close();
    await receiver.close();
    await database.drop().catch(() => undefined);
  }
}

main()
  .catch((err) => {
    failed++;
    process.stdout.write(`FAIL the check could not run: ${(err as Error)?.stack ?? err}\n`);
  })
  .finally(() => {
    process.stdout.write(`telemetry: ${passed} passed, ${failed} failed\n`);
    process.exit(failed > 0 ? 1 : 0);
  });
