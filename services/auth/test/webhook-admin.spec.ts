/**
 * The webhook part of the admin API, on the real auth app: create, list, show, update, delete, rotate, deliveries,
 * redeliver and ping; bad input answers 400 in the OCI envelope, unknown ids 404; URLs are checked for SSRF.
 */
import request from 'supertest';
import type { Express } from 'express';
import { hashPassword } from '@lading/access';
import * as meta from '@lading/metadata';
import { TestDeps, createTestDeps } from '@lading/testing';
import { verifyWebhook } from '@lading/webhooks';
import { createDeliveryWorker } from '@lading/webhooks-service';
import { TestReceiver, startTestReceiver } from '@lading/webhooks/test/test-receiver';
import { createAuthService } from '../src/auth-service';

const ROOT = { user: 'root', password: 'root-password-1' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const UNKNOWN_ID = '01234567-89ab-7def-8123-456789abcdef';

/** An auth app with an admin, and a personal access token to call its admin API with. */
async function adminApp(webhooks: { allowList?: string[] }): Promise<{ deps: TestDeps; app: Express; pat: string }> {
  const deps = await createTestDeps({ auth: { enabled: true, loginFailureLimit: 1000 }, webhooks: { ...webhooks, backoffInitial: '10ms', backoffMax: '50ms' } });
  const { app } = createAuthService({ db: deps.db, config: deps.config, logger: deps.logger });
  await meta.createUser(deps.db, ROOT.user, await hashPassword(ROOT.password), true);
  await meta.createUser(deps.db, 'alice', await hashPassword('alice-password'), false);
  const pat = await request(app).post(`/admin/v1/users/${ROOT.user}/tokens`).set('Authorization', basic(ROOT.user, ROOT.password)).send({ name: 'cli' });
  return { deps, app, pat: pat.body.token };
}

describe('the webhook admin API', () => {
  let strict: { deps: TestDeps; app: Express; pat: string };
  let open: { deps: TestDeps; app: Express; pat: string };
  let receiver: TestReceiver;

  function call(on: { app: Express; pat: string }, method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: unknown) {
    const req = request(on.app)[method](`/admin/v1/webhooks${path}`).set('Authorization', basic(ROOT.user, on.pat));
    return body === undefined ? req : req.set('Content-Type', 'application/json').send(JSON.stringify(body));
  }

  beforeAll(async () => {
    strict = await adminApp({});
    open = await adminApp({ allowList: ['127.0.0.1'] });
    receiver = await startTestReceiver();
  });
  afterAll(async () => {
    await receiver.close();
    await strict.deps.close();
    await open.deps.close();
  });

  it('creates a subscription and shows its secret once', async () => {
    const created = await call(strict, 'post', '', { name: 'scanner', namespace: 'team', url: 'https://93.184.216.34/hooks/lading', eventTypes: ['manifest.pushed'] }).expect(201);
    expect(created.body).toMatchObject({
      name: 'scanner',
      namespace: 'team',
      url: 'https://93.184.216.34/hooks/lading',
      format: 'cloudevents',
      eventTypes: ['io.lading.manifest.pushed'],
      enabled: true,
    });
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const shown = await call(strict, 'get', `/${created.body.id}`).expect(200);
    expect(shown.body.secret).toBeUndefined();
    expect(shown.body).toMatchObject({ id: created.body.id, name: 'scanner' });
    const listed = await call(strict, 'get', '').expect(200);
    expect(listed.body.webhooks.map((w: { id: string }) => w.id)).toContain(created.body.id);
    expect(JSON.stringify(listed.body)).not.toContain(created.body.secret);
  });

  it.each([
    ['a non-http scheme', { name: 'x', url: 'ftp://93.184.216.34/x' }, /http or https/],
    ['a javascript URL', { name: 'x', url: 'javascript:alert(1)' }, /http or https/],
    ['credentials in the URL', { name: 'x', url: 'https://user:pw@93.184.216.34/x' }, /credentials/],
    ['no URL', { name: 'x' }, /url is missing/],
    ['a URL that is not one', { name: 'x', url: 'not a url' }, /not a URL/],
    ['a URL too long', { name: 'x', url: `https://93.184.216.34/${'a'.repeat(3000)}` }, /url is missing or invalid/],
    ['an unknown format', { name: 'x', url: 'https://93.184.216.34/x', format: 'xml' }, /format must be one of cloudevents, distribution/],
    ['an unknown event type', { name: 'x', url: 'https://93.184.216.34/x', eventTypes: ['manifest.exploded'] }, /unknown event type/],
    ['event types not in an array', { name: 'x', url: 'https://93.184.216.34/x', eventTypes: 'manifest.pushed' }, /must be an array/],
    ['a namespace that is no repository name', { name: 'x', url: 'https://93.184.216.34/x', namespace: 'Team/../x' }, /namespace/],
    ['no name', { url: 'https://93.184.216.34/x' }, /name is missing/],
    ['enabled that is no boolean', { name: 'x', url: 'https://93.184.216.34/x', enabled: 'yes' }, /enabled must be true or false/],
    ['a body that is an array', [1, 2], /JSON object/],
  ])('answers 400 in the OCI envelope for %s, and stores nothing', async (_what, body, message) => {
    const before = (await call(strict, 'get', '').expect(200)).body.webhooks.length;
    const res = await call(strict, 'post', '', body).expect(400);
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors[0].code).toBe('UNSUPPORTED');
    expect(res.body.errors[0].message).toMatch(message);
    expect((await call(strict, 'get', '').expect(200)).body.webhooks).toHaveLength(before);
  });

  it.each([
    ['loopback', 'http://127.0.0.1:8080/hook', /loopback/],
    ['loopback by name', 'http://localhost:8080/hook', /loopback/],
    ['IPv6 loopback', 'http://[::1]/hook', /loopback/],
    ['IPv4-mapped loopback', 'http://[::ffff:127.0.0.1]/hook', /loopback/],
    ['private', 'http://10.1.2.3/hook', /private/],
    ['private 192.168', 'https://192.168.0.10/hook', /private/],
    ['unique-local IPv6', 'http://[fd12:3456::1]/hook', /private/],
    ['link-local', 'http://169.254.10.10/hook', /link-local/],
    ['cloud metadata', 'http://169.254.169.254/latest/meta-data/', /metadata/],
    ['AWS IPv6 metadata', 'http://[fd00:ec2::254]/', /metadata/],
    ['CGNAT', 'http://100.64.1.1/hook', /cgnat/],
    ['unspecified', 'http://0.0.0.0:8080/hook', /unspecified/],
    ['multicast', 'http://224.0.0.1/hook', /multicast/],
    ['a decimal IPv4 spelling of loopback', 'http://2130706433/hook', /loopback/],
  ])('refuses a URL that resolves to a %s address with 400', async (_what, url, reason) => {
    const res = await call(strict, 'post', '', { name: 'ssrf', url }).expect(400);
    expect(res.body.errors[0].message).toMatch(/url refused/);
    expect(res.body.errors[0].message).toMatch(reason);
  });

  it('accepts 127.0.0.1 when webhooks.allowList names it, and still refuses other private addresses', async () => {
    await call(open, 'post', '', { name: 'local', url: `${receiver.url}/hook` }).expect(201);
    await call(open, 'post', '', { name: 'local', url: 'http://10.0.0.1/hook' }).expect(400);
  });

  it('updates a subscription: enable, disable, url, filters; refuses bad changes and unknown fields', async () => {
    const { body: created } = await call(strict, 'post', '', { name: 'ci', url: 'https://93.184.216.34/a' }).expect(201);
    const disabled = await call(strict, 'patch', `/${created.id}`, { enabled: false }).expect(200);
    expect(disabled.body).toMatchObject({ enabled: false, url: 'https://93.184.216.34/a' });
    const changed = await call(strict, 'patch', `/${created.id}`, {
      url: 'https://93.184.216.35/b',
      namespace: 'ci',
      format: 'distribution',
      eventTypes: ['io.lading.tag.updated', 'manifest.pushed'],
      enabled: true,
    }).expect(200);
    expect(changed.body).toMatchObject({ url: 'https://93.184.216.35/b', namespace: 'ci', format: 'distribution', eventTypes: ['io.lading.tag.updated', 'io.lading.manifest.pushed'], enabled: true });
    expect(changed.body.secret).toBeUndefined();
    await call(strict, 'patch', `/${created.id}`, { url: 'http://127.0.0.1/' }).expect(400);
    await call(strict, 'patch', `/${created.id}`, { secret: 'whsec_AAAA' }).expect(400);
    await call(strict, 'patch', `/${created.id}`, { eventTypes: ['nope'] }).expect(400);
    expect((await call(strict, 'get', `/${created.id}`).expect(200)).body.url).toBe('https://93.184.216.35/b');
  });

  it('rotates the secret: a new one, shown once', async () => {
    const { body: created } = await call(strict, 'post', '', { name: 'rot', url: 'https://93.184.216.34/r' }).expect(201);
    const rotated = await call(strict, 'post', `/${created.id}/rotate`).expect(200);
    expect(rotated.body.id).toBe(created.id);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(created.secret);
    expect((await call(strict, 'get', `/${created.id}`).expect(200)).body.secret).toBeUndefined();
  });

  it('deletes a subscription, then answers 404 for it', async () => {
    const { body: created } = await call(strict, 'post', '', { name: 'gone', url: 'https://93.184.216.34/g' }).expect(201);
    await call(strict, 'delete', `/${created.id}`).expect(204);
    await call(strict, 'get', `/${created.id}`).expect(404);
    await call(strict, 'delete', `/${created.id}`).expect(404);
  });

  it.each([
    ['get', ''],
    ['patch', ''],
    ['delete', ''],
    ['post', '/rotate'],
    ['post', '/ping'],
    ['get', '/deliveries'],
    ['post', `/deliveries/${UNKNOWN_ID}/redeliver`],
  ] as const)('answers 404 NOT_FOUND for %s /:id%s of an unknown or malformed id', async (method, suffix) => {
    for (const id of [UNKNOWN_ID, 'not-a-uuid']) {
      const res = await call(strict, method, `/${id}${suffix}`, method === 'patch' ? { enabled: true } : undefined).expect(404);
      expect(res.body.errors[0].code).toBe('NOT_FOUND');
    }
  });

  it('pings, lists deliveries by status with paging, and redelivers a delivered or dead one with the same event id', async () => {
    const { body: hook } = await call(open, 'post', '', { name: 'pinged', url: `${receiver.url}/ping`, format: 'cloudevents' }).expect(201);
    const ping = await call(open, 'post', `/${hook.id}/ping`).expect(202);
    expect(ping.body.eventId).toMatch(/^[0-9a-f-]{36}$/);
    const pending = await call(open, 'get', `/${hook.id}/deliveries?status=pending`).expect(200);
    expect(pending.body.deliveries).toEqual([expect.objectContaining({ id: ping.body.deliveryId, eventId: ping.body.eventId, eventType: 'io.lading.webhook.ping', status: 'pending', attempts: 0 })]);
    await call(open, 'post', `/${hook.id}/deliveries/${ping.body.deliveryId}/redeliver`).expect(409);

    const worker = createDeliveryWorker({ db: open.deps.db, config: open.deps.config, logger: open.deps.logger });
    try {
      expect(await worker.runUntilIdle()).toBe(1);
      const got = receiver.requests.at(-1)!;
      expect(got.path).toBe('/ping');
      expect(got.headers['webhook-id']).toBe(ping.body.eventId);
      expect(verifyWebhook(hook.secret, got.headers, got.body)).toBe(true);
      expect(JSON.parse(got.body)).toMatchObject({ specversion: '1.0', type: 'io.lading.webhook.ping', data: { webhook: { id: hook.id, name: 'pinged' } } });

      expect((await call(open, 'get', `/${hook.id}/deliveries?status=pending`).expect(200)).body.deliveries).toEqual([]);
      const delivered = await call(open, 'get', `/${hook.id}/deliveries?status=delivered`).expect(200);
      expect(delivered.body.deliveries[0]).toMatchObject({ status: 'delivered', attempts: 1, lastStatus: 200 });

      const again = await call(open, 'post', `/${hook.id}/deliveries/${ping.body.deliveryId}/redeliver`).expect(202);
      expect(again.body).toMatchObject({ status: 'pending', eventId: ping.body.eventId, redeliveries: 1 });
      expect(await worker.runUntilIdle()).toBe(1);
      expect(receiver.requests.at(-1)!.headers['webhook-id']).toBe(ping.body.eventId);

      await call(open, 'post', `/${hook.id}/ping`).expect(202);
      await call(open, 'post', `/${hook.id}/ping`).expect(202);
      const page1 = await call(open, 'get', `/${hook.id}/deliveries?n=2`).expect(200);
      expect(page1.body.deliveries).toHaveLength(2);
      expect(page1.headers.link).toMatch(new RegExp(`^</admin/v1/webhooks/${hook.id}/deliveries\\?n=2&last=${page1.body.deliveries[1].id}>; rel="next"$`));
      const page2 = await call(open, 'get', `/${hook.id}/deliveries?n=2&last=${page1.body.deliveries[1].id}`).expect(200);
      expect(page2.body.deliveries).toHaveLength(1);
      expect(page2.headers.link).toBeUndefined();
      await call(open, 'post', `/${hook.id}/deliveries/${UNKNOWN_ID}/redeliver`).expect(404);
    } finally {
      await worker.stop();
    }
    const bad = await call(open, 'get', `/${hook.id}/deliveries?status=lost`).expect(400);
    expect(bad.body.errors[0].message).toMatch(/status must be one of pending, delivered, dead/);
    await call(open, 'get', `/${hook.id}/deliveries?n=x`).expect(400);
    await call(open, 'get', `/${hook.id}/deliveries?last=zzz`).expect(400);
  });

  it('is for admins only: 401 without credentials, 403 for a user who is not an admin', async () => {
    const none = await request(strict.app).get('/admin/v1/webhooks');
    expect(none.status).toBe(401);
    const alice = await request(strict.app).get('/admin/v1/webhooks').set('Authorization', basic('alice', 'alice-password'));
    expect(alice.status).toBe(403);
    const create = await request(strict.app).post('/admin/v1/webhooks').set('Authorization', basic('alice', 'alice-password')).set('Content-Type', 'application/json').send(JSON.stringify({ name: 'x', url: 'https://93.184.216.34/' }));
    expect(create.status).toBe(403);
  });
});

describe('the outbox part of the admin API', () => {
  it('lists parked outbox rows to admins only, and requeues one', async () => {
    const { deps, app, pat } = await adminApp({});
    try {
      await deps.db.transaction((tx) => meta.ensureRepository(tx, 'team/app'));
      const id = '01234567-89ab-7def-8123-456789abcde0';
      await deps.db.query(
        `INSERT INTO outbox (id, repository, sequence, type, event, attempts, last_error, parked_at)
         VALUES ($1, 'team/app', 1, 'io.lading.manifest.pushed', '{}', 10, 'MESSAGE_TOO_LARGE', now())`,
        [id],
      );
      await request(app).get('/admin/v1/outbox/parked').expect(401);
      await request(app).get('/admin/v1/outbox/parked').set('Authorization', basic('alice', 'alice-password')).expect(403);
      const parked = await request(app).get('/admin/v1/outbox/parked').set('Authorization', basic(ROOT.user, pat)).expect(200);
      expect(JSON.stringify(parked.body)).toContain(id);
      await request(app).post(`/admin/v1/outbox/parked/${id}/requeue`).set('Authorization', basic(ROOT.user, pat)).expect((res) => expect(res.status).toBeLessThan(300));
      const row = await deps.db.query<{ parked_at: Date | null; attempts: number }>(`SELECT parked_at, attempts FROM outbox WHERE id = $1`, [id]);
      expect(row.rows[0]).toEqual({ parked_at: null, attempts: 0 });
    } finally {
      await deps.close();
    }
  });
});

describe('malformed admin requests', () => {
  it('answers a JSON body that does not parse with 400 UNSUPPORTED, not a 500', async () => {
    const { deps, app, pat } = await adminApp({});
    try {
      const res = await request(app)
        .post('/admin/v1/webhooks')
        .set('Authorization', basic(ROOT.user, pat))
        .set('Content-Type', 'application/json')
        .send('{"name": "x", "url": ')
        .expect(400);
      expect(res.body.errors[0].code).toBe('UNSUPPORTED');
      expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts|SyntaxError/);
      const users = await request(app).post('/admin/v1/users').set('Authorization', basic(ROOT.user, pat)).set('Content-Type', 'application/json').send('not json').expect(400);
      expect(users.body.errors[0].code).toBe('UNSUPPORTED');
    } finally {
      await deps.close();
    }
  });
});
