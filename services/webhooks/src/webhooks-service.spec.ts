/**
 * The webhooks service on the real PostgreSQL: health and readiness on its HTTP face, and the Prometheus metrics
 * (served by @lading/telemetry, as on the process's debug port) of a worker that has delivered one event and
 * dead-lettered another.
 */
import request from 'supertest';
import { parseConfig } from '@lading/config';
import { createUuidV7Generator } from '@lading/events';
import { createLogger } from '@lading/telemetry';
import { startTestRegistryMetrics } from '@lading/telemetry/testing';
import { deliveryStats, generateWebhookSecret, insertDelivery, insertSubscription } from '@lading/webhooks';
import { FreshPostgres, freshPostgres } from '@lading/webhooks/test/fresh-postgres';
import { TestReceiver, startTestReceiver } from '@lading/webhooks/test/test-receiver';
import { createDeliveryWorker } from './delivery-worker';
import { createWebhooksService } from './webhooks-service';

describe('the webhooks service', () => {
  let pg: FreshPostgres;
  let receiver: TestReceiver;
  const ids = createUuidV7Generator();

  beforeAll(async () => {
    pg = await freshPostgres('webhooks_service');
    receiver = await startTestReceiver();
  });
  afterAll(async () => {
    await receiver.close();
    await pg.drop();
  });

  it('answers /healthz and /readyz, and exports the delivery counters and queue gauges', async () => {
    const config = parseConfig({ webhooks: { allowList: ['127.0.0.1'], maxAttempts: 1 }, log: { level: 'silent', access: false } });
    const logger = createLogger({ service: 'test', level: 'silent' });
    const { metrics, scrape, shutdown } = startTestRegistryMetrics();
    metrics.observeWebhookQueue(() => deliveryStats(pg.db));
    const worker = createDeliveryWorker({ db: pg.db, config, logger, metrics });
    const app = createWebhooksService({ db: pg.db, logger });
    for (const path of ['/ok', '/fail', '/later']) {
      const id = ids();
      await insertSubscription(pg.db, { id, name: path, namespace: '', url: `${receiver.url}${path}`, format: 'cloudevents', eventTypes: [], secret: generateWebhookSecret(), enabled: path !== '/later' });
      const eventId = ids();
      await insertDelivery(pg.db, { id: ids(), subscriptionId: id, eventId, eventType: 'io.lading.manifest.pushed', repository: 'team/app', event: JSON.stringify({ id: eventId }) });
    }
    receiver.answer(({ path }) => ({ status: path === '/ok' ? 200 : 500 }));
    expect(await worker.runUntilIdle()).toBe(2);

    await request(app).get('/healthz').expect(200, { status: 'ok' });
    await request(app).get('/readyz').expect(200, { status: 'ready' });
    const text = await scrape();
    expect(text).toContain('lading_webhook_deliveries_total{result="delivered"} 1\n');
    expect(text).toContain('lading_webhook_deliveries_total{result="dead_lettered"} 1\n');
    expect(text).toContain('lading_webhook_delivery_failures_total 1\n');
    expect(text).toContain('lading_webhook_dead_letters 1\n');
    expect(text).toContain('lading_webhook_pending 1\n');
    const unknown = await request(app).get('/nope').expect(404);
    expect(unknown.body.errors[0].code).toBe('NOT_FOUND');
    await worker.stop();
    await shutdown();
  });
});
