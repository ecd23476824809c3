/**
 * The CI webhook example against signed deliveries built here with the registry's own signer, carrying real events
 * of an embedded registry (a push by tag) in both delivery formats: a valid delivery runs the command once with
 * the image's digest reference; a retried or replayed id runs nothing; a bad signature or a stale timestamp is
 * refused with 401 and runs nothing. Then end to end: a subscription of the embedded registry delivers a push.
 */
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { parseConfig } from '@lading/config';
import { EmbeddedRegistry, createEmbeddedRegistry } from '@lading/embedded';
import type { LadingEvent } from '@lading/events';
import { createLogger } from '@lading/telemetry';
import { imageManifest, makeBlob } from '@lading/testing';
import { generateWebhookSecret, signWebhook } from '@lading/webhooks';
import { renderDelivery } from '@lading/webhooks-service';
import { CiWebhookReceiver, createCiWebhookReceiver } from './ci-webhook-receiver';
import { globPattern } from './push-triggers';

const REGISTRY_HOST = 'registry.test:5000';

/** A command that appends `IMAGE IMAGE_TAG LADING_EVENT_ID` to a file: what ran, with which environment. */
function recordingCommand(file: string): string[] {
  const script = `require('fs').appendFileSync(process.argv[1], [process.env.IMAGE, process.env.IMAGE_TAG, process.env.LADING_EVENT_ID].join(' ') + '\\n')`;
  return [process.execPath, '-e', script, file];
}

async function linesOf(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

describe('the CI webhook receiver', () => {
  let dir: string;
  let events: LadingEvent[];
  let manifestDigest: string;
  const secret = generateWebhookSecret();
  let clockMs = Date.now();

  beforeAll(async () => {
    // Real events: push an image by tag to an embedded registry and keep what its bus carried.
    dir = await mkdtemp(path.join(tmpdir(), 'lading-ci-webhook-'));
    const registry = await createEmbeddedRegistry(
      parseConfig({ data: { dir }, gc: { enabled: false }, log: { level: 'silent', access: false } }),
      createLogger({ service: 'test', level: 'silent' }),
    );
    events = [];
    await registry.bus.subscribe((event) => {
      events.push(event);
    });
    const config = makeBlob('{"os":"linux","architecture":"amd64"}');
    const layer = makeBlob(512);
    const manifest = imageManifest(config, [layer]);
    for (const blob of [config, layer]) {
      await request(registry.app).post(`/v2/team/app/blobs/uploads/?digest=${blob.digest}`).set('Content-Type', 'application/octet-stream').send(blob.data).expect(201);
    }
    await request(registry.app).put('/v2/team/app/manifests/v1.2.3').set('Content-Type', manifest.mediaType).send(manifest.body.toString()).expect(201);
    manifestDigest = manifest.digest;
    await registry.flushEvents();
    await registry.close();
  }, 60_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  let server: Server;
  let url: string;
  let receiver: CiWebhookReceiver;
  let output: string;

  beforeEach(async () => {
    output = path.join(dir, `ran-${Math.random()}.txt`);
    clockMs = Date.now();
    receiver = createCiWebhookReceiver({
      secret,
      registryHost: REGISTRY_HOST,
      rules: [{ repository: 'team/*', tag: 'v*', command: recordingCommand(output) }],
      now: () => clockMs,
    });
    server = createServer(receiver.handler).listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterEach(async () => {
    await receiver.idle();
    server.close();
  });

  const eventOf = (type: string) => {
    const event = events.find((e) => e.type === type);
    if (!event) throw new Error(`the registry emitted no ${type}`);
    return event;
  };

  /** POSTs a body signed with `signingSecret` at `timestampSeconds` under `id`. */
  async function deliver(body: string, id: string, options: { signingSecret?: string; timestampSeconds?: number; contentType?: string } = {}) {
    const headers = signWebhook(options.signingSecret ?? secret, id, options.timestampSeconds ?? Math.floor(clockMs / 1000), body);
    const res = await fetch(url, { method: 'POST', headers: { ...headers, 'Content-Type': options.contentType ?? 'application/cloudevents+json' }, body });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('runs the command once for a signed tag.updated, with the image by digest in its environment', async () => {
    const event = eventOf('io.lading.tag.updated');
    const delivered = await deliver(JSON.stringify(event), event.id);
    expect(delivered).toEqual({ status: 202, body: { status: 'triggered', images: [`${REGISTRY_HOST}/team/app@${manifestDigest}`] } });
    await receiver.idle();
    expect(await linesOf(output)).toEqual([`${REGISTRY_HOST}/team/app@${manifestDigest} v1.2.3 ${event.id}`]);
  });

  it('ignores a retry (same id, new timestamp) and a replay (same request) of a delivery it handled', async () => {
    const event = eventOf('io.lading.tag.updated');
    const body = JSON.stringify(event);
    const headers = signWebhook(secret, event.id, Math.floor(clockMs / 1000), body);
    const send = () => fetch(url, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/cloudevents+json' }, body });
    expect((await send()).status).toBe(202);
    const replayed = await send();
    expect({ status: replayed.status, body: await replayed.json() }).toEqual({ status: 200, body: { status: 'duplicate' } });
    clockMs += 90_000;
    expect(await deliver(body, event.id)).toEqual({ status: 200, body: { status: 'duplicate' } });
    await receiver.idle();
    expect(await linesOf(output)).toHaveLength(1);
  });

  it('refuses a wrong secret, a changed body, a stale or future timestamp and missing headers with 401, running nothing', async () => {
    const event = eventOf('io.lading.tag.updated');
    const body = JSON.stringify(event);
    const now = Math.floor(clockMs / 1000);
    expect((await deliver(body, event.id, { signingSecret: generateWebhookSecret() })).status).toBe(401);
    expect((await deliver(body, event.id, { timestampSeconds: now - 600 })).status).toBe(401);
    expect((await deliver(body, event.id, { timestampSeconds: now + 600 })).status).toBe(401);
    const signed = signWebhook(secret, event.id, now, body);
    const tampered = await fetch(url, { method: 'POST', headers: { ...signed }, body: body.replace('v1.2.3', 'v9.9.9') });
    expect(tampered.status).toBe(401);
    const unsigned = await fetch(url, { method: 'POST', body });
    expect(unsigned.status).toBe(401);
    await receiver.idle();
    expect(await linesOf(output)).toEqual([]);
    // The refused attempts did not burn the id: the genuine delivery still runs.
    expect((await deliver(body, event.id)).status).toBe(202);
    await receiver.idle();
    expect(await linesOf(output)).toHaveLength(1);
  });

  it('triggers on the Distribution envelope of the same push, and ignores blob pushes and other events', async () => {
    const pushed = eventOf('io.lading.manifest.pushed');
    const rendered = renderDelivery('distribution', JSON.stringify(pushed), { baseUrl: `http://${REGISTRY_HOST}` });
    expect(await deliver(rendered.body, pushed.id, { contentType: rendered.contentType })).toMatchObject({ status: 202 });
    const blob = eventOf('io.lading.blob.uploaded');
    const blobBody = renderDelivery('distribution', JSON.stringify(blob), {}).body;
    expect(await deliver(blobBody, blob.id)).toEqual({ status: 200, body: { status: 'ignored' } });
    // manifest.pushed as a CloudEvent is not the trigger: its tag.updated is (one run per tag, also for tag moves).
    expect(await deliver(JSON.stringify(pushed), `${pushed.id}-ce`)).toEqual({ status: 200, body: { status: 'ignored' } });
    await receiver.idle();
    expect(await linesOf(output)).toEqual([`${REGISTRY_HOST}/team/app@${manifestDigest} v1.2.3 ${pushed.id}`]);
  });

  it('ignores tags and repositories outside its rules', async () => {
    const event = eventOf('io.lading.tag.updated');
    const otherTag = { ...event, id: 'other-tag', data: { ...event.data, tag: 'latest' } };
    const otherRepo = { ...event, id: 'other-repo', data: { ...event.data, repository: 'team/app/sub' } };
    expect((await deliver(JSON.stringify(otherTag), otherTag.id)).body).toEqual({ status: 'ignored' });
    expect((await deliver(JSON.stringify(otherRepo), otherRepo.id)).body).toEqual({ status: 'ignored' });
    await receiver.idle();
    expect(await linesOf(output)).toEqual([]);
  });

  it('answers 400 to a signed body that is not JSON and 405 to anything but POST', async () => {
    expect((await deliver('not json', 'bad-body')).status).toBe(400);
    expect((await fetch(url)).status).toBe(405);
  });

  it('accepts either secret during a rotation', async () => {
    const rotated = generateWebhookSecret();
    const both = createCiWebhookReceiver({ secret: [secret, rotated], registryHost: REGISTRY_HOST, rules: [], now: () => clockMs });
    const rotating = createServer(both.handler).listen(0, '127.0.0.1');
    await once(rotating, 'listening');
    const at = `http://127.0.0.1:${(rotating.address() as AddressInfo).port}/`;
    const send = (signingSecret: string, id: string) => fetch(at, { method: 'POST', headers: { ...signWebhook(signingSecret, id, Math.floor(clockMs / 1000), '{}') }, body: '{}' });
    expect([(await send(secret, 'old')).status, (await send(rotated, 'new')).status, (await send(generateWebhookSecret(), 'other')).status]).toEqual([200, 200, 401]);
    rotating.close();
  });

  it('matches globs: * within a path segment, ** across segments', () => {
    expect(globPattern('team/*').test('team/app')).toBe(true);
    expect(globPattern('team/*').test('team/app/sub')).toBe(false);
    expect(globPattern('team/**').test('team/app/sub')).toBe(true);
    expect(globPattern('v*').test('v1.2.3')).toBe(true);
    expect(globPattern('v?.*').test('v1.2')).toBe(true);
    expect(globPattern('a.b').test('axb')).toBe(false);
  });
});

describe('the CI webhook receiver behind a real subscription of the embedded registry', () => {
  const admin = { user: 'admin', password: 'ci webhook test admin password' };
  const basic = `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString('base64')}`;
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  let receiver: CiWebhookReceiver;
  const answers: number[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-ci-webhook-e2e-'));
    registry = await createEmbeddedRegistry(
      parseConfig({
        data: { dir },
        admin,
        gc: { enabled: false },
        webhooks: { allowList: ['127.0.0.1'], pollInterval: '100ms' },
        log: { level: 'silent', access: false },
      }),
      createLogger({ service: 'test', level: 'silent' }),
    );
  }, 60_000);
  afterAll(async () => {
    server?.close();
    await registry?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the command once for a push by tag, and not again when an admin redelivers it', async () => {
    const output = path.join(dir, 'ran.txt');
    // The subscription's secret is only known once it is created, so the receiver is built after the subscription.
    const listening = createServer((req, res) => {
      res.on('finish', () => answers.push(res.statusCode));
      receiver.handler(req, res);
    }).listen(0, '127.0.0.1');
    server = listening;
    await once(listening, 'listening');
    const receiverUrl = `http://127.0.0.1:${(listening.address() as AddressInfo).port}/hooks`;
    const created = await request(registry.app)
      .post('/admin/v1/webhooks')
      .set('Authorization', basic)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ name: 'ci', url: receiverUrl, namespace: 'team', eventTypes: ['tag.updated'] }));
    expect(created.status).toBe(201);
    receiver = createCiWebhookReceiver({ secret: created.body.secret as string, registryHost: REGISTRY_HOST, rules: [{ repository: 'team/**', tag: 'v*', command: recordingCommand(output) }] });

    const config = makeBlob('{"os":"linux","architecture":"arm64"}');
    const layer = makeBlob(256);
    const manifest = imageManifest(config, [layer]);
    for (const blob of [config, layer]) {
      await request(registry.app).post(`/v2/team/svc/blobs/uploads/?digest=${blob.digest}`).set('Content-Type', 'application/octet-stream').send(blob.data).expect(201);
    }
    await request(registry.app).put('/v2/team/svc/manifests/v2.0.0').set('Content-Type', manifest.mediaType).send(manifest.body.toString()).expect(201);
    await request(registry.app).put('/v2/other/svc/manifests/v2.0.0').set('Content-Type', manifest.mediaType).send(manifest.body.toString());

    const started = Date.now();
    while ((await linesOf(output)).length === 0 && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 100));
    await receiver.idle();
    const lines = await linesOf(output);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${REGISTRY_HOST}/team/svc@${manifest.digest} v2\\.0\\.0 \\S+$`));

    const id = created.body.id as string;
    const delivered = await request(registry.app).get(`/admin/v1/webhooks/${id}/deliveries?status=delivered`).set('Authorization', basic);
    expect(delivered.status).toBe(200);
    const deliveries = delivered.body.deliveries as Array<{ id: string }>;
    expect(deliveries).toHaveLength(1);
    const redeliver = await request(registry.app).post(`/admin/v1/webhooks/${id}/deliveries/${deliveries[0].id}/redeliver`).set('Authorization', basic);
    expect(redeliver.status).toBe(202);
    const before = answers.length;
    while (answers.length === before && Date.now() - started < 40_000) await new Promise((r) => setTimeout(r, 100));
    await receiver.idle();
    expect(answers).toEqual([202, 200]);
    expect(await linesOf(output)).toHaveLength(1);
  }, 60_000);
});
