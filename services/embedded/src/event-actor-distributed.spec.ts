/**
 * Events name who did it in the distributed mode: the gateway (token enforcement on) proxies over HTTP to the blob
 * and manifest services, which publish through their outbox to the real Kafka broker (tools/infra) on a topic of
 * this test's own. A robot pushes through the gateway, and a plain Kafka consumer reads the event records: they name
 * the robot. A client that reaches a service directly and names itself in the principal header is anonymous there.
 * The robot's logins reach the same topic as audit records.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Consumer, logLevel } from 'kafkajs';
import { hashPassword } from '@lading/access';
import { createAuthService } from '@lading/auth';
import { createBlobService } from '@lading/blob';
import { parseConfig } from '@lading/config';
import { AUDIT_EVENT_TYPES, AUDIT_PARTITION_KEY, type AuditEventOf, createEventSchemaValidator, createKafkaClient, type LadingEvent } from '@lading/events';
import { authorizationFromConfig, createGateway, createUpstreamProxy, UpstreamProxy } from '@lading/gateway';
import { PRINCIPAL_HEADER, PRINCIPAL_PROOF_HEADER, principalProof } from '@lading/http';
import { createManifestService } from '@lading/manifest';
import * as meta from '@lading/metadata';
import { ProcessParts, openProcessParts } from '@lading/runtime';
import { createLogger } from '@lading/telemetry';
import { imageManifest, infraSettings, makeBlob } from '@lading/testing';

const logger = createLogger({ service: 'test', level: 'silent' });

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('the actor of events behind the distributed gateway, read from Kafka', () => {
  const { kafkaBrokers } = infraSettings();
  const topic = `lading-actor-${randomBytes(4).toString('hex')}`;
  const secret = randomBytes(32).toString('base64url');
  const servers: http.Server[] = [];
  const proxies: UpstreamProxy[] = [];
  let dir: string;
  let parts: ProcessParts;
  let consumer: Consumer;
  let gatewayUrl: string;
  let blobUrl: string;
  const records: LadingEvent[] = [];
  /** The Kafka record key of each record, by event id. */
  const keys = new Map<string, string>();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-actor-kafka-'));
    const kafka = createKafkaClient({ clientId: 'plain-reader', brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    // Client -> gateway -> service: the services trust the one hop the gateway adds to X-Forwarded-For.
    const config = parseConfig({
      data: { dir },
      auth: { enabled: true },
      http: { trustedProxies: 1 },
      kafka: { brokers: kafkaBrokers, topic, partitions: 1 },
      upstreams: { secret },
      log: { level: 'silent', access: false },
    });
    parts = await openProcessParts(config, logger);
    const { db, store } = parts;
    const onEventsCommitted = () => parts.relay.kick();
    const auth = createAuthService({ db, config, logger });
    const blob = await listen(createBlobService({ db, store, config, logger, events: parts.eventsFor('blob'), onEventsCommitted }));
    const manifest = await listen(createManifestService({ db, config, logger, events: parts.eventsFor('manifest'), onEventsCommitted }));
    const authApp = await listen(auth.app);
    servers.push(blob.server, manifest.server, authApp.server);
    blobUrl = blob.url;
    const proxy = (service: string, url: string, principalSecret?: string) => {
      const p = createUpstreamProxy({ service, urls: [url], headersTimeoutMs: 10_000, logger, principalSecret });
      proxies.push(p);
      return p.handler;
    };
    const gateway = await listen(
      createGateway({
        dispatch: { blob: proxy('blob', blob.url, secret), manifest: proxy('manifest', manifest.url, secret), auth: proxy('auth', authApp.url) },
        authorize: authorizationFromConfig({ ...config, http: { ...config.http, trustedProxies: 0 } }, () => auth.keys.verificationKeys()),
        logger,
      }) as http.RequestListener,
    );
    servers.push(gateway.server);
    gatewayUrl = gateway.url;

    await meta.upsertNamespace(db, 'team', false);
    await meta.createRobot(db, 'ci-bot', await hashPassword('robot-secret'), null, 'admin');
    // Grants name robots by their login, as the admin API stores them.
    await meta.addGrant(db, 'team', 'robot', 'robot$ci-bot', 'push');

    consumer = kafka.consumer({ groupId: `reader-${topic}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const record = JSON.parse(message.value!.toString()) as LadingEvent;
        records.push(record);
        keys.set(record.id, message.key?.toString() ?? '');
      },
    });
  }, 120_000);

  afterAll(async () => {
    await consumer?.disconnect();
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    await Promise.all(proxies.map((p) => p.close()));
    await parts?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The record of type `type` for `repository` once the consumer has it (the broker may take a moment). */
  async function recordOf(type: string, repository: string): Promise<LadingEvent> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const found = records.find((e) => e.type === type && e.data.repository === repository);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no ${type} for ${repository} on ${topic}; read ${records.map((e) => e.type).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('names the robot on the record a plain Kafka consumer reads after it pushed through the gateway', async () => {
    const query = new URLSearchParams({ service: 'lading', scope: 'repository:team/app:pull,push' });
    const tokenRes = await fetch(`${gatewayUrl}/token?${query}`, { headers: { authorization: `Basic ${Buffer.from('robot$ci-bot:robot-secret').toString('base64')}` } });
    expect(tokenRes.status).toBe(200);
    const { token } = (await tokenRes.json()) as { token: string };
    const bearer = { authorization: `Bearer ${token}` };
    const config = makeBlob('{"os":"linux","by":"robot"}');
    const manifest = imageManifest(config, []);
    const upload = await fetch(`${gatewayUrl}/v2/team/app/blobs/uploads/?digest=${config.digest}`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/octet-stream', 'x-forwarded-for': '198.51.100.9' },
      body: config.data,
    });
    expect(upload.status).toBe(201);
    const put = await fetch(`${gatewayUrl}/v2/team/app/manifests/v1`, { method: 'PUT', headers: { ...bearer, 'content-type': manifest.mediaType }, body: manifest.body });
    expect(put.status).toBe(201);

    const pushed = await recordOf('io.lading.manifest.pushed', 'team/app');
    expect(pushed.data.actor).toEqual({ type: 'robot', name: 'ci-bot' });
    const uploaded = await recordOf('io.lading.blob.uploaded', 'team/app');
    expect(uploaded.data.actor).toEqual({ type: 'robot', name: 'ci-bot' });
    // The gateway trusts no proxy: the client's own X-Forwarded-For is not its address.
    expect(uploaded.data.request?.addr).toMatch(/127\.0\.0\.1$/);
  });

  it('names nobody when a client reaches a service directly and names itself', async () => {
    const blob = makeBlob('{"os":"linux","by":"mallory"}');
    const res = await fetch(`${blobUrl}/v2/team/direct/blobs/uploads/?digest=${blob.digest}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        'x-request-id': 'r-1',
        [PRINCIPAL_HEADER]: 'robot$ci-bot',
        [PRINCIPAL_PROOF_HEADER]: principalProof('a guess at the shared secret, 32+ chars', 'r-1', 'robot$ci-bot'),
      },
      body: blob.data,
    });
    expect(res.status).toBe(201);
    expect((await recordOf('io.lading.blob.uploaded', 'team/direct')).data.actor).toEqual({ type: 'anonymous', name: null });
  });

  it('puts the login of the robot on Kafka as an audit record keyed _audit, valid against the audit schema, without its secret', async () => {
    const validate = await createEventSchemaValidator();
    const query = new URLSearchParams({ service: 'lading', scope: 'repository:team/app:pull' });
    const tokenRes = await fetch(`${gatewayUrl}/token?${query}`, { headers: { authorization: `Basic ${Buffer.from('robot$ci-bot:robot-secret').toString('base64')}` } });
    expect(tokenRes.status).toBe(200);
    const deadline = Date.now() + 30_000;
    let login: LadingEvent | undefined;
    while (!(login = records.find((e) => (e.type as string) === AUDIT_EVENT_TYPES.login)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const event = login as unknown as AuditEventOf<typeof AUDIT_EVENT_TYPES.login>;
    expect(event.data).toMatchObject({ actor: { type: 'robot', name: 'ci-bot' }, result: 'success', method: 'robot' });
    expect(keys.get(event.id)).toBe(AUDIT_PARTITION_KEY);
    expect(validate(event)).toEqual([]);
    expect(JSON.stringify(records.filter((e) => e.type.startsWith('io.lading.audit.')))).not.toContain('robot-secret');
  });
});
