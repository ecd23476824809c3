/**
 * The enqueuer and the delivery worker on the real PostgreSQL of tools/infra, delivering to receivers on 127.0.0.1
 * (allowed through `webhooks.allowList`): signatures, retries with backoff, Retry-After, timeouts, redirects,
 * dead letters, redelivery, leases, concurrency, and the SSRF guard at connect time.
 */
import { LadingConfigInput, parseConfig } from '@lading/config';
import { EVENT_TYPES, LadingEvent, createUuidV7Generator } from '@lading/events';
import type { Database } from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { startTestRegistryMetrics } from '@lading/telemetry/testing';
import { enqueueEvent } from './delivery-enqueuer';
import { DeliveryWorker, createDeliveryWorker } from './delivery-worker';
import * as store from '@lading/webhooks';
import { generateWebhookSecret, verifyWebhook } from '@lading/webhooks';
import { FreshPostgres, freshPostgres } from '@lading/webhooks/test/fresh-postgres';
import { TestReceiver, startTestReceiver } from '@lading/webhooks/test/test-receiver';

const ids = createUuidV7Generator();
const logger = createLogger({ service: 'test', level: 'silent' });
const DIGEST = `sha256:${'c'.repeat(64)}`;

function makeEvent(type: string, repository: string, data: Partial<LadingEvent['data']> = {}): LadingEvent {
  return {
    specversion: '1.0',
    id: ids(),
    source: '//test/lading/manifest',
    type: type as LadingEvent['type'],
    subject: `${repository}@${DIGEST}`,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    partitionkey: repository,
    sequence: '00000000000000000001',
    data: {
      repository,
      namespace: repository.split('/')[0],
      digest: DIGEST,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: null,
      size: 100,
      tag: null,
      previousDigest: null,
      references: [],
      subject: null,
      fromRepository: null,
      proxy: null,
      actor: { name: 'ci', type: 'user' },
      request: { id: 'req-1', addr: '127.0.0.1:1', method: 'PUT', useragent: 'test' },
      ...data,
    },
  };
}

describe('webhook delivery on PostgreSQL', () => {
  let pg: FreshPostgres;
  let db: Database;
  let receiver: TestReceiver;
  const workers: DeliveryWorker[] = [];

  function worker(webhooks: LadingConfigInput['webhooks'] = {}, extra: Partial<Parameters<typeof createDeliveryWorker>[0]> = {}, on: Database = db) {
    const config = parseConfig({
      webhooks: { allowList: ['127.0.0.1'], backoffInitial: '50ms', backoffMax: '400ms', timeout: '2s', pollInterval: '50ms', ...webhooks },
      log: { level: 'silent', access: false },
    });
    const w = createDeliveryWorker({ db: on, config, logger, ...extra });
    workers.push(w);
    return w;
  }

  async function subscribe(fields: Partial<store.NewSubscription> = {}) {
    return store.insertSubscription(db, {
      id: ids(),
      name: 'hook',
      namespace: '',
      url: `${receiver.url}/hook`,
      format: 'cloudevents',
      eventTypes: [],
      secret: generateWebhookSecret(),
      enabled: true,
      ...fields,
    });
  }

  const enqueue = (event: LadingEvent) => enqueueEvent({ db, ids }, event);
  const deliveriesOf = (subscriptionId: string) => store.listDeliveries(db, subscriptionId, { limit: 1000 });

  async function until(check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  beforeAll(async () => {
    pg = await freshPostgres('webhooks');
    db = pg.db;
  });
  beforeEach(async () => {
    receiver = await startTestReceiver();
    await db.query(`DELETE FROM webhook_subscriptions`);
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
    await receiver.close();
  });
  afterAll(async () => {
    await pg.drop();
  });

  describe('enqueueing', () => {
    it('queues one delivery per matching enabled subscription, once however often the bus repeats the event', async () => {
      const all = await subscribe({ namespace: '' });
      const team = await subscribe({ namespace: 'team' });
      const other = await subscribe({ namespace: 'other' });
      const disabled = await subscribe({ namespace: '', enabled: false });
      const onlyDeletes = await subscribe({ eventTypes: [EVENT_TYPES.manifestDeleted] });
      const event = makeEvent(EVENT_TYPES.manifestPushed, 'team/app');
      expect(await enqueue(event)).toBe(2);
      expect(await enqueue(event)).toBe(0);
      expect(await enqueue(event)).toBe(0);
      expect((await deliveriesOf(all.id)).map((d) => d.eventId)).toEqual([event.id]);
      expect(await deliveriesOf(team.id)).toHaveLength(1);
      for (const s of [other, disabled, onlyDeletes]) expect(await deliveriesOf(s.id)).toHaveLength(0);
    });

    it('matches a namespace and the repositories below it, not a repository that only starts with its name', async () => {
      const team = await subscribe({ namespace: 'team' });
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team'));
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team/a/b'));
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'teams/app'));
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'tea'));
      expect((await deliveriesOf(team.id)).map((d) => d.repository).sort()).toEqual(['team', 'team/a/b']);
    });

    it('gives a subscription only the events of changes made after it was created (a minute of grace for clocks)', async () => {
      const s = await subscribe();
      const old = { ...makeEvent(EVENT_TYPES.manifestPushed, 'team/app'), time: new Date(Date.now() - 5 * 60_000).toISOString() };
      const recent = { ...makeEvent(EVENT_TYPES.manifestPushed, 'team/app'), time: new Date(Date.now() - 30_000).toISOString() };
      expect(await enqueue(old)).toBe(0);
      expect(await enqueue(recent)).toBe(1);
      expect((await deliveriesOf(s.id)).map((d) => d.eventId)).toEqual([recent.id]);
    });

    it('gives a Distribution subscriber one push per tagged manifest push, and nothing Distribution does not have', async () => {
      const dist = await subscribe({ format: 'distribution' });
      const ce = await subscribe({ format: 'cloudevents' });
      const request = { id: 'req-push-1', addr: '127.0.0.1:1', method: 'PUT' as const, useragent: 'test' };
      await enqueue(makeEvent(EVENT_TYPES.repositoryCreated, 'team/app', { digest: null, request }));
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team/app', { tag: 'v1', request }));
      await enqueue(makeEvent(EVENT_TYPES.tagUpdated, 'team/app', { tag: 'v1', request }));
      // A second tag of the same push (?tag=) and a later tag of the same manifest are pushes of their own.
      await enqueue(makeEvent(EVENT_TYPES.tagUpdated, 'team/app', { tag: 'v1.0', request }));
      await enqueue(makeEvent(EVENT_TYPES.tagUpdated, 'team/app', { tag: 'v1', request: { ...request, id: 'req-retag' } }));
      expect((await deliveriesOf(dist.id)).map((d) => d.eventType)).toEqual([EVENT_TYPES.manifestPushed, EVENT_TYPES.tagUpdated, EVENT_TYPES.tagUpdated]);
      expect(await deliveriesOf(ce.id)).toHaveLength(5);
    });
  });

  describe('delivering', () => {
    it('POSTs the event as the bus carried it, signed so that the receiver verifies it', async () => {
      const s = await subscribe();
      const event = makeEvent(EVENT_TYPES.manifestPushed, 'team/app', { tag: 'v1' });
      await enqueue(event);
      expect(await worker().runUntilIdle()).toBe(1);
      expect(receiver.requests).toHaveLength(1);
      const got = receiver.requests[0];
      expect(got.path).toBe('/hook');
      expect(got.headers['content-type']).toBe('application/cloudevents+json');
      expect(got.body).toBe(JSON.stringify(event));
      expect(got.headers['webhook-id']).toBe(event.id);
      expect(verifyWebhook(s.secret, got.headers, got.body)).toBe(true);
      expect(verifyWebhook(generateWebhookSecret(), got.headers, got.body)).toBe(false);
      const [d] = await deliveriesOf(s.id);
      expect(d).toMatchObject({ status: 'delivered', attempts: 1, lastStatus: 200, lastError: null });
    });

    it('retries a failing receiver with growing, jittered delays, keeping the event id, until it answers 2xx', async () => {
      const s = await subscribe();
      receiver.answer(({ index }) => ({ status: index < 3 ? 500 : 204 }));
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team/app'));
      const w = worker({ backoffInitial: '100ms', backoffMax: '2s' }, { random: () => 0.999 });
      w.start();
      await until(async () => (await deliveriesOf(s.id))[0].status === 'delivered');
      const times = receiver.requests.map((r) => r.at);
      expect(times).toHaveLength(4);
      const gaps = times.slice(1).map((t, i) => t - times[i]);
      // Full jitter with random() just under 1: each delay is just under 100, 200, 400 ms.
      expect(gaps[0]).toBeGreaterThanOrEqual(90);
      expect(gaps[1]).toBeGreaterThanOrEqual(190);
      expect(gaps[2]).toBeGreaterThanOrEqual(390);
      expect(gaps[2]).toBeLessThan(1500);
      expect(new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size).toBe(1);
      expect(new Set(receiver.requests.map((r) => r.headers['webhook-timestamp'])).size).toBeGreaterThanOrEqual(1);
      const [d] = await deliveriesOf(s.id);
      expect(d).toMatchObject({ status: 'delivered', attempts: 4, lastStatus: 204 });
      expect(w.counters).toMatchObject({ outcomes: { delivered: 1, retry: 3, dead: 0 }, failures: 3 });
    });

    it('dead-letters after maxAttempts, keeps the last status and error, and redelivers the same event on request', async () => {
      const s = await subscribe();
      receiver.answer(() => ({ status: 502 }));
      const event = makeEvent(EVENT_TYPES.manifestPushed, 'team/app');
      await enqueue(event);
      // The process's metrics: the worker counts into them, the queue's gauges are read from the database.
      const { metrics, scrape, shutdown } = startTestRegistryMetrics();
      metrics.observeWebhookQueue(() => store.deliveryStats(db));
      const w = worker({ maxAttempts: 3 }, { metrics });
      w.start();
      await until(async () => (await deliveriesOf(s.id))[0].status === 'dead');
      expect(receiver.requests).toHaveLength(3);
      const [dead] = await deliveriesOf(s.id);
      expect(dead).toMatchObject({ status: 'dead', attempts: 3, lastStatus: 502, lastError: 'HTTP 502' });
      expect(dead.finishedAt).not.toBeNull();
      expect(await scrape()).toMatch(/^lading_webhook_dead_letters 1$/m);
      // Nothing more happens to a dead delivery.
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.requests).toHaveLength(3);

      receiver.answer(() => ({ status: 200 }));
      const requeued = await store.requeueDelivery(db, s.id, dead.id);
      expect(requeued).toMatchObject({ status: 'pending', attempts: 0, redeliveries: 1, eventId: event.id });
      w.wake();
      await until(async () => (await deliveriesOf(s.id))[0].status === 'delivered');
      expect(receiver.requests).toHaveLength(4);
      expect(receiver.requests[3].headers['webhook-id']).toBe(event.id);
      expect(verifyWebhook(s.secret, receiver.requests[3].headers, receiver.requests[3].body)).toBe(true);
      const text = await scrape();
      expect(text).toMatch(/^lading_webhook_deliveries_total\{result="dead_lettered"\} 1$/m);
      expect(text).toMatch(/^lading_webhook_dead_letters 0$/m);
      await shutdown();
    });

    it('dead-letters once the age budget is spent, whatever attempts are left', async () => {
      const s = await subscribe();
      receiver.answer(() => ({ status: 500 }));
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team/app'));
      worker({ maxAttempts: 1000, maxAge: '600ms', backoffInitial: '100ms', backoffMax: '100ms' }).start();
      await until(async () => (await deliveriesOf(s.id))[0].status === 'dead');
      const [d] = await deliveriesOf(s.id);
      expect(d.attempts).toBeGreaterThanOrEqual(2);
      expect(d.attempts).toBeLessThan(20);
      expect(new Date(d.finishedAt!).getTime() - new Date(d.firstAttemptAt!).getTime()).toBeGreaterThanOrEqual(550);
    });

    it('waits as long as Retry-After asks on a 429, within the maximum backoff', async () => {
      const s = await subscribe();
      receiver.answer(({ index }) => (index === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 }));
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team/app'));
      worker({ backoffInitial: '10ms', backoffMax: '5s' }).start();
      await until(async () => (await deliveriesOf(s.id))[0].status === 'delivered');
      expect(receiver.requests[1].at - receiver.requests[0].at).toBeGreaterThanOrEqual(950);
    });

    it('counts a receiver slower than the timeout as a failed attempt', async () => {
      const s = await subscribe();
      receiver.answer(({ index }) => (index === 0 ? { status: 200, delayMs: 1500 } : { status: 200 }));
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team/app'));
      const w = worker({ timeout: '300ms', maxAttempts: 2 });
      await w.runUntilIdle(1);
      const [d] = await deliveriesOf(s.id);
      expect(d).toMatchObject({ status: 'pending', attempts: 1, lastStatus: null });
      expect(d.lastError).toMatch(/timeout/i);
    });

    it('does not follow redirects: a 3xx is a failed attempt', async () => {
      const s = await subscribe();
      receiver.answer(({ path }) => (path === '/hook' ? { status: 307, headers: { Location: '/elsewhere' } } : { status: 200 }));
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team/app'));
      await worker({ maxAttempts: 1 }).runUntilIdle();
      expect(receiver.requests.map((r) => r.path)).toEqual(['/hook']);
      expect((await deliveriesOf(s.id))[0]).toMatchObject({ status: 'dead', lastStatus: 307, lastError: 'HTTP 307' });
    });

    it('keeps at most webhooks.concurrency attempts in flight', async () => {
      await subscribe();
      let inFlight = 0;
      let maxInFlight = 0;
      receiver.answer(() => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        setTimeout(() => inFlight--, 150);
        return { status: 200, delayMs: 150 };
      });
      for (let i = 0; i < 8; i++) await enqueue(makeEvent(EVENT_TYPES.manifestPushed, `team/app${i}`));
      worker({ concurrency: 3 }).start();
      await until(() => receiver.requests.length === 8);
      expect(maxInFlight).toBe(3);
    });

    it('gives a delivery claimed by a worker that died back after the lease, and records its outcome once', async () => {
      const s = await subscribe();
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team/app'));
      // A worker claims it and dies before recording anything.
      const [lost] = await store.claimDueDeliveries(db, '00000000-0000-4000-8000-000000000001', 10, 300);
      expect(lost).toBeDefined();
      expect(await store.claimDueDeliveries(db, '00000000-0000-4000-8000-000000000002', 10, 300)).toEqual([]);
      await new Promise((r) => setTimeout(r, 350));
      expect(await worker().runUntilIdle()).toBe(1);
      // The dead worker's late outcome is ignored: the delivery stays delivered, by the second claim.
      expect(await store.recordAttempt(db, lost.id, lost.claim, { kind: 'dead', status: null, error: 'late' })).toBe(false);
      expect((await deliveriesOf(s.id))[0]).toMatchObject({ status: 'delivered', attempts: 2, lastError: null });
      expect(receiver.requests).toHaveLength(1);
    });

    it('shares the queue between workers on separate pools without sending any delivery twice', async () => {
      await subscribe();
      receiver.answer(() => ({ status: 200, delayMs: 20 }));
      for (let i = 0; i < 60; i++) await enqueue(makeEvent(EVENT_TYPES.manifestPushed, `team/app${i}`));
      const other = await pg.openPool(4);
      const a = worker({ concurrency: 4 });
      const b = worker({ concurrency: 4 }, {}, other);
      a.start();
      b.start();
      await until(() => receiver.requests.length >= 60);
      await new Promise((r) => setTimeout(r, 200));
      expect(receiver.requests).toHaveLength(60);
      expect(new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size).toBe(60);
      expect(a.counters.outcomes.delivered + b.counters.outcomes.delivered).toBe(60);
      expect(a.counters.outcomes.delivered).toBeGreaterThan(0);
      expect(b.counters.outcomes.delivered).toBeGreaterThan(0);
    });
  });

  describe('the SSRF guard at connect time', () => {
    it('refuses a subscription to 127.0.0.1 without the allow-list, and delivers with it', async () => {
      const s = await subscribe();
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team/app'));
      await worker({ allowList: [], maxAttempts: 1 }).runUntilIdle();
      expect(receiver.requests).toHaveLength(0);
      expect((await deliveriesOf(s.id))[0]).toMatchObject({ status: 'dead', lastStatus: null });
      expect((await deliveriesOf(s.id))[0].lastError).toMatch(/refused: 127\.0\.0\.1 resolves to 127\.0\.0\.1, a loopback address/);

      await store.requeueDelivery(db, s.id, (await deliveriesOf(s.id))[0].id);
      await worker({ allowList: ['127.0.0.0/8'] }).runUntilIdle();
      expect(receiver.requests).toHaveLength(1);
      expect((await deliveriesOf(s.id))[0].status).toBe('delivered');
    });

    it('refuses a host name that resolves to loopback when the connection is made (DNS rebinding)', async () => {
      const port = new URL(receiver.url).port;
      const s = await subscribe({ url: `http://hooks.rebind.test:${port}/hook` });
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team/app'));
      const rebinding = async () => [{ address: '127.0.0.1', family: 4 }];
      await worker({ allowList: [], maxAttempts: 1 }, { resolver: rebinding }).runUntilIdle();
      expect(receiver.requests).toHaveLength(0);
      expect((await deliveriesOf(s.id))[0].lastError).toMatch(/hooks\.rebind\.test resolves to 127\.0\.0\.1, a loopback address/);

      await store.requeueDelivery(db, s.id, (await deliveriesOf(s.id))[0].id);
      await worker({ allowList: ['hooks.rebind.test'] }, { resolver: rebinding }).runUntilIdle();
      expect(receiver.requests).toHaveLength(1);
    });

    it('honours an allow-list entry with a port at connect time for that port only, for a host name and an address', async () => {
      const port = Number(new URL(receiver.url).port);
      const other = port === 65535 ? port - 1 : port + 1;
      const byName = await subscribe({ url: `http://hooks.rebind.test:${port}/hook` });
      const byAddress = await subscribe({ url: `http://127.0.0.1:${port}/hook` });
      const rebinding = async () => [{ address: '127.0.0.1', family: 4 }];
      await enqueue(makeEvent(EVENT_TYPES.manifestPushed, 'team/app'));
      await worker({ allowList: [`hooks.rebind.test:${other}`, `127.0.0.1:${other}`], maxAttempts: 1 }, { resolver: rebinding }).runUntilIdle();
      expect(receiver.requests).toHaveLength(0);
      expect((await deliveriesOf(byName.id))[0].lastError).toMatch(new RegExp(`hooks\\.rebind\\.test resolves to 127\\.0\\.0\\.1, a loopback address \\(not in webhooks.allowList for port ${port}\\)`));
      expect((await deliveriesOf(byAddress.id))[0].lastError).toMatch(/127\.0\.0\.1 resolves to 127\.0\.0\.1, a loopback address/);

      for (const s of [byName, byAddress]) await store.requeueDelivery(db, s.id, (await deliveriesOf(s.id))[0].id);
      await worker({ allowList: [`hooks.rebind.test:${port}`, `127.0.0.1:${port}`] }, { resolver: rebinding }).runUntilIdle();
      expect(receiver.requests).toHaveLength(2);
    });
  });
});
