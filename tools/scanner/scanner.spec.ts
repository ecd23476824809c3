/**
 * The example scanner end to end on real Kafka (tools/infra): an embedded registry whose bus is a fresh Kafka
 * topic, served on a loopback port; an image with real gzip tar layers is pushed, the scanner (its own consumer
 * group) consumes the push, and its report appears as a referrer of the image within seconds, saying what the
 * image really holds. A duplicate delivery, and a second group replaying the whole topic, add no second report.
 * Then the same scanner against a registry with token auth on and blobs answered by 307 to MinIO.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { logLevel } from 'kafkajs';
import * as Minio from 'minio';
import { RegistryClient, RegistryError, createRegistryClient, expectAnswer } from '@lading/client';
import { LadingConfigInput, parseConfig } from '@lading/config';
import { EmbeddedRegistry, createEmbeddedRegistry } from '@lading/embedded';
import { createKafkaClient, EVENT_TYPES, LadingEvent, toKafkaMessage } from '@lading/events';
import { createLogger } from '@lading/telemetry';
import { REPO_ROOT, infraSettings } from '@lading/testing';
import { RunningScanner, startKafkaScanner } from './kafka-scanner';
import { SCAN_REPORT_TYPE, ScanReport } from './scan-report';
import { ScanOutcome, ScannerLog, createScanner, reasonToSkip } from './scanner';
import { KnownImage, knownImage } from './test-layers';

const quiet: ScannerLog = () => undefined;

/** An embedded registry listening on 127.0.0.1 with a random port. */
async function serveRegistry(overrides: LadingConfigInput): Promise<{ registry: EmbeddedRegistry; url: string; dir: string; close(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lading-scanner-'));
  const config = parseConfig({ ...overrides, data: { dir }, gc: { enabled: false }, log: { level: 'silent', access: false } });
  const registry = await createEmbeddedRegistry(config, createLogger({ service: 'test', level: 'silent' }));
  const server: Server = registry.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    registry,
    dir,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await registry.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Pushes an image's blobs and its manifest under a tag. */
async function pushImage(client: RegistryClient, repository: string, tag: string, image: KnownImage): Promise<void> {
  for (const blob of image.blobs) await client.ensureBlob(repository, blob);
  expectAnswer(await client.putManifest(repository, tag, image.manifest), 201, `PUT manifest ${repository}:${tag}`);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Reads the one report attached to an image and checks that it says what the image holds. */
async function expectReportOf(client: RegistryClient, repository: string, image: KnownImage): Promise<ScanReport> {
  const referrers = await client.referrers(repository, image.manifest.digest, SCAN_REPORT_TYPE);
  expect(referrers).toHaveLength(1);
  expect(referrers[0].annotations?.['org.opencontainers.image.created']).toMatch(/^\d{4}-\d\d-\d\dT/);
  const artifact = JSON.parse((await client.readManifest(repository, referrers[0].digest)).bytes.toString()) as {
    artifactType: string;
    config: { mediaType: string; size: number };
    layers: Array<{ mediaType: string; digest: string }>;
    subject: { digest: string; mediaType: string; size: number };
  };
  expect(artifact.artifactType).toBe(SCAN_REPORT_TYPE);
  expect(artifact.config).toMatchObject({ mediaType: 'application/vnd.oci.empty.v1+json', size: 2 });
  expect(artifact.subject).toEqual({ digest: image.manifest.digest, mediaType: image.manifest.mediaType, size: image.manifest.body.length });
  const reportBytes = await client.readBlob(repository, artifact.layers[0].digest, 1 << 20);
  expect(reportBytes.toString()).not.toContain('hunter2');
  const report = JSON.parse(reportBytes.toString()) as ScanReport;
  const e = image.expected;
  expect(report.image).toMatchObject({ repository, digest: image.manifest.digest });
  expect(report.config).toMatchObject({ os: 'linux', architecture: 'amd64', runsAsRoot: true, exposedPorts: e.exposedPorts, secretLikeEnv: e.secretLikeEnv });
  expect(report.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.digest));
  expect(report.summary).toMatchObject({
    files: e.files,
    setuidFiles: e.setuid,
    worldWritable: e.worldWritable,
    unreadableLayers: 0,
    packageDatabases: [
      { path: '/var/lib/dpkg/status', manager: 'dpkg', packages: e.dpkgPackages },
      { path: '/lib/apk/db/installed', manager: 'apk', packages: e.apkPackages },
    ],
  });
  expect(report.findings.map((f) => f.message)).toEqual(
    expect.arrayContaining(['runs as root (User is unset)', 'environment variable DB_PASSWORD looks like a credential baked into the image', 'setuid file /bin/su']),
  );
  return report;
}

describe('which events the scanner scans', () => {
  const event = (data: Partial<LadingEvent['data']>, type: string = EVENT_TYPES.manifestPushed) =>
    ({ id: 'e', type, data: { repository: 'r', digest: 'sha256:x', mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: null, subject: null, ...data } }) as LadingEvent;

  it('scans image pushes (OCI and Docker) and nothing else', () => {
    expect(reasonToSkip(event({}))).toBeNull();
    expect(reasonToSkip(event({ artifactType: 'application/vnd.oci.image.config.v1+json' }))).toBeNull();
    expect(reasonToSkip(event({ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', artifactType: 'application/vnd.docker.container.image.v1+json' }))).toBeNull();
    expect(reasonToSkip(event({ artifactType: SCAN_REPORT_TYPE }))).toBe(`an artifact (${SCAN_REPORT_TYPE})`);
    expect(reasonToSkip(event({ artifactType: 'application/vnd.cncf.helm.config.v1+json' }))).toMatch(/^an artifact/);
    expect(reasonToSkip(event({ mediaType: 'application/vnd.oci.image.index.v1+json' }))).toMatch(/^an index/);
    expect(reasonToSkip(event({ subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:y', size: 1 } }))).toMatch(/referrer/);
    expect(reasonToSkip(event({}, EVENT_TYPES.tagUpdated))).toMatch(/^not a manifest push/);
    expect(reasonToSkip(event({}, EVENT_TYPES.blobUploaded))).toMatch(/^not a manifest push/);
  });
});

describe('the example scanner on Kafka', () => {
  const infra = infraSettings();
  const topic = `lading.scanner-test.${process.pid}.${Date.now()}`;
  const kafka = createKafkaClient({ clientId: 'scanner-test', brokers: infra.kafkaBrokers, logLevel: logLevel.NOTHING });
  let served: Awaited<ReturnType<typeof serveRegistry>>;
  let client: RegistryClient;
  let scanner: RunningScanner | null = null;
  const outcomes: Array<{ outcome: ScanOutcome; event: LadingEvent }> = [];
  const image = knownImage();

  beforeAll(async () => {
    served = await serveRegistry({ kafka: { brokers: infra.kafkaBrokers, topic, partitions: 3 } });
    client = createRegistryClient({ url: served.url });
  });
  afterAll(async () => {
    await scanner?.stop();
    await served?.close();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.deleteGroups([`${topic}.scanner`, `${topic}.cli`]).catch(() => undefined);
    await admin.disconnect();
  });

  it('attaches a report saying what the image holds as a referrer of the pushed image, within seconds', async () => {
    scanner = await startKafkaScanner({
      brokers: infra.kafkaBrokers,
      topic,
      group: `${topic}.scanner`,
      fromBeginning: true,
      scanner: createScanner({ registry: createRegistryClient({ url: served.url }), now: () => new Date(), log: quiet }),
      log: quiet,
      onHandled: (outcome, event) => outcomes.push({ outcome, event }),
    });
    const pushedAt = Date.now();
    await pushImage(client, 'team/app', 'v1', image);
    await waitFor('the report', async () => ((await client.referrers('team/app', image.manifest.digest, SCAN_REPORT_TYPE)).length > 0 ? true : undefined));
    const latencyMs = Date.now() - pushedAt;
    expect(latencyMs).toBeLessThan(15_000);
    await expectReportOf(client, 'team/app', image);
    // Its own report's push comes back as an event too, and is recognised as an artifact, not scanned.
    const own = await waitFor('the report push event', () => outcomes.find((o) => o.event.type === EVENT_TYPES.manifestPushed && o.event.data.artifactType === SCAN_REPORT_TYPE));
    expect(own.outcome).toEqual({ action: 'skipped', reason: `an artifact (${SCAN_REPORT_TYPE})` });
    expect(scanner.tally).toMatchObject({ reported: 1, failed: 0, unreadable: 0 });
  }, 60_000);

  it('adds no second report when the push event is delivered again', async () => {
    const pushed = outcomes.find((o) => o.outcome.action === 'reported')?.event as LadingEvent;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [toKafkaMessage(pushed)] });
    await producer.disconnect();
    const again = await waitFor('the redelivery', () => outcomes.find((o) => o.event.id === pushed.id && o.outcome.action !== 'reported'));
    expect(again.outcome).toEqual({ action: 'already-reported', repository: 'team/app', digest: image.manifest.digest });
    expect(await client.referrers('team/app', image.manifest.digest, SCAN_REPORT_TYPE)).toHaveLength(1);
    expect(scanner?.tally).toMatchObject({ reported: 1, alreadyReported: 1 });
  }, 30_000);

  it('runs from the command line with --stop-after: a new group replays the topic, reports the new image and not the old one again', async () => {
    await scanner?.stop();
    scanner = null;
    const second = knownImage();
    await pushImage(client, 'team/other', 'latest', second);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'tools/scanner/main.ts', '--registry', served.url, '--brokers', infra.kafkaBrokers.join(','), '--topic', topic, '--group', `${topic}.cli`, '--from-beginning', '--stop-after', '3', '--deadline', '40s'],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    // The tally is the one line of stdout that is not a log line (the logger writes its lines asynchronously, so one
    // may land after the tally).
    const tallies = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => !('msg' in line));
    expect(tallies).toHaveLength(1);
    const tally = tallies[0];
    // The topic holds three pushes of images: team/app's, its duplicate from the test above, and team/other's.
    expect(tally).toMatchObject({ reported: 1, alreadyReported: 2, failed: 0 });
    await expectReportOf(client, 'team/other', second);
    expect(await client.referrers('team/app', image.manifest.digest, SCAN_REPORT_TYPE)).toHaveLength(1);
  }, 60_000);
});

describe('the scanner consumer: offsets committed only after a handled event', () => {
  const infra = infraSettings();
  const topic = `lading.scanner-commit-test.${process.pid}.${Date.now()}`;
  const group = `${topic}.scanner`;
  const kafka = createKafkaClient({ clientId: 'scanner-commit-test', brokers: infra.kafkaBrokers, logLevel: logLevel.NOTHING });
  afterAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.deleteGroups([group]).catch(() => undefined);
    await admin.disconnect();
  });

  it('gives a failed scan back to Kafka, which delivers it again, and commits it once it succeeds', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const event = {
      id: 'commit-test-1',
      type: EVENT_TYPES.manifestPushed,
      partitionkey: 'team/app',
      data: { repository: 'team/app', digest: 'sha256:1', mediaType: 'application/vnd.oci.image.manifest.v1+json' },
    } as unknown as LadingEvent;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'team/app', value: JSON.stringify(event) }, { key: 'team/app', value: 'not json' }] });
    await producer.disconnect();

    // A focused fake scanner: the registry "fails" on the first attempt only.
    let attempts = 0;
    const flaky = {
      handle: async (): Promise<ScanOutcome> => {
        attempts++;
        if (attempts === 1) throw new RegistryError(503, 'UNAVAILABLE', 'the registry answered 503');
        return { action: 'reported', repository: 'team/app', digest: 'sha256:1', reportDigest: 'sha256:r', report: {} as ScanReport };
      },
    };
    const first = await startKafkaScanner({ brokers: infra.kafkaBrokers, topic, group, fromBeginning: true, scanner: flaky, log: quiet, stopAfter: 1, deadlineMs: Date.now() + 30_000 });
    const tally = await first.finished;
    expect(attempts).toBe(2);
    expect(tally).toMatchObject({ failed: 1, reported: 1 });

    // The group's position is past the event: a restarted scanner does not see it again (only the unreadable record).
    const offsets = await (async () => {
      const a = kafka.admin();
      await a.connect();
      try {
        return await a.fetchOffsets({ groupId: group, topics: [topic] });
      } finally {
        await a.disconnect();
      }
    })();
    expect(Number(offsets[0].partitions[0].offset)).toBeGreaterThanOrEqual(1);
    const seen: string[] = [];
    const second = await startKafkaScanner({
      brokers: infra.kafkaBrokers,
      topic,
      group,
      fromBeginning: true,
      scanner: { handle: async (e) => (seen.push(e.id), { action: 'skipped', reason: 'test' }) },
      log: quiet,
      deadlineMs: Date.now() + 8_000,
    });
    const again = await second.finished;
    expect(seen).toEqual([]);
    expect(again.reported + again.alreadyReported + again.skipped).toBe(0);
  }, 60_000);
});

describe('the example scanner against a registry with token auth on and blobs redirected to MinIO', () => {
  const infra = infraSettings();
  const admin = { username: 'admin', password: 'scanner test admin password' };
  let served: Awaited<ReturnType<typeof serveRegistry>>;
  const events: LadingEvent[] = [];

  beforeAll(async () => {
    served = await serveRegistry({
      auth: { enabled: true },
      admin: { user: admin.username, password: admin.password },
      storage: { driver: 's3', ...infra.storage, bucket: 'lading-scanner-test', redirect: true },
    });
    await served.registry.bus.subscribe((event) => {
      events.push(event);
    });
  });
  afterAll(async () => {
    await served?.close();
    const endpoint = new URL(infra.storage.endpoint);
    const minio = new Minio.Client({ endPoint: endpoint.hostname, port: Number(endpoint.port), useSSL: false, accessKey: infra.storage.accessKey, secretKey: infra.storage.secretKey, pathStyle: true });
    const names: string[] = [];
    for await (const item of minio.listObjectsV2('lading-scanner-test', '', true) as AsyncIterable<Minio.BucketItem>) if (item.name) names.push(item.name);
    if (names.length > 0) await minio.removeObjects('lading-scanner-test', names);
  });

  it('logs in through the token endpoint, follows the 307 to MinIO without its credentials, and attaches its report', async () => {
    const client = createRegistryClient({ url: served.url, credentials: admin });
    const image = knownImage();
    await pushImage(client, 'secure/app', 'v1', image);
    const anonymous = await fetch(`${served.url}/v2/secure/app/blobs/${image.layers[0].digest}`, { redirect: 'manual' });
    expect(anonymous.status).toBe(401);
    const basic = `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}`;
    const tokenRes = await fetch(`${served.url}/token?service=lading&scope=repository:secure/app:pull`, { headers: { Authorization: basic } });
    const { token } = (await tokenRes.json()) as { token: string };
    const redirected = await fetch(`${served.url}/v2/secure/app/blobs/${image.layers[0].digest}`, { redirect: 'manual', headers: { Authorization: `Bearer ${token}` } });
    expect(redirected.status).toBe(307);
    expect(new URL(redirected.headers.get('location') as string).origin).toBe(new URL(infra.storage.endpoint).origin);
    await served.registry.flushEvents();
    const pushed = await waitFor('the push event', () => events.find((e) => e.type === EVENT_TYPES.manifestPushed && e.data.digest === image.manifest.digest));

    // Without credentials the scanner is refused, and stores nothing.
    const refused = createScanner({ registry: createRegistryClient({ url: served.url }), now: () => new Date(), log: quiet });
    const err = await refused.handle(pushed).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(401);

    const scanner = createScanner({ registry: createRegistryClient({ url: served.url, credentials: admin }), now: () => new Date(), log: quiet });
    expect(await scanner.handle(pushed)).toMatchObject({ action: 'reported' });
    await expectReportOf(client, 'secure/app', image);
    expect(await scanner.handle(pushed)).toEqual({ action: 'already-reported', repository: 'secure/app', digest: image.manifest.digest });
  }, 60_000);
});
