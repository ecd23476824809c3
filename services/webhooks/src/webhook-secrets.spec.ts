/**
 * Webhook secrets at rest, on the real PostgreSQL of tools/infra: with `secrets.key` the stored column never holds the
 * secret the admin API hands out, and deliveries are still signed with it; secrets stored in plain text or under a
 * previous key are sealed under the current key when delivery starts; a key that cannot open them stops the start.
 */
import express from 'express';
import request from 'supertest';
import { SEALED_PREFIX, SecretCipherError, createSecretCipher, secretKeyId } from '@lading/access';
import { LadingConfig, parseConfig } from '@lading/config';
import { createInProcessBus, createUuidV7Generator } from '@lading/events';
import type { Database } from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { createDeliveryWorker } from './delivery-worker';
import * as store from '@lading/webhooks';
import { createWebhookAdminRouter, generateWebhookSecret, sealStoredWebhookSecrets, verifyWebhook } from '@lading/webhooks';
import { FreshPostgres, freshPostgres } from '@lading/webhooks/test/fresh-postgres';
import { TestReceiver, startTestReceiver } from '@lading/webhooks/test/test-receiver';
import { startWebhookDelivery } from './webhook-delivery';

const KEY1 = Buffer.alloc(32, 11);
const KEY2 = Buffer.alloc(32, 12);
const logger = createLogger({ service: 'test', level: 'silent' });
const ids = createUuidV7Generator();

function configWith(secrets: { key?: Buffer; previousKeys?: Buffer[] }, maxAttempts = 12): LadingConfig {
  return parseConfig({
    secrets: { key: secrets.key?.toString('base64'), previousKeys: (secrets.previousKeys ?? []).map((k) => k.toString('base64')) },
    webhooks: { allowList: ['127.0.0.1'], timeout: '2s', pollInterval: '50ms', maxAttempts },
    log: { level: 'silent', access: false },
  });
}

describe('webhook secrets at rest on PostgreSQL', () => {
  let pg: FreshPostgres;
  let db: Database;
  let receiver: TestReceiver;

  const storedSecret = async (id: string) => (await db.query<{ secret: string }>(`SELECT secret FROM webhook_subscriptions WHERE id = $1`, [id])).rows[0].secret;

  beforeAll(async () => {
    pg = await freshPostgres('webhook_secrets');
    db = pg.db;
  });
  beforeEach(async () => {
    receiver = await startTestReceiver();
    await db.query(`DELETE FROM webhook_subscriptions`);
  });
  afterEach(async () => {
    await receiver.close();
  });
  afterAll(async () => {
    await pg.drop();
  });

  it('stores a created or rotated secret sealed, never as given out, and signs deliveries with it', async () => {
    const config = configWith({ key: KEY1 });
    const app = express().use(createWebhookAdminRouter({ db, config }));
    const created = await request(app).post('/').send({ name: 'ci', url: `${receiver.url}/hook` }).expect(201);
    const secret: string = created.body.secret;
    let stored = await storedSecret(created.body.id);
    expect(stored.startsWith(`${SEALED_PREFIX}${secretKeyId(KEY1)}:`)).toBe(true);
    expect(stored).not.toContain(secret);
    expect(stored).not.toContain(secret.slice('whsec_'.length, 'whsec_'.length + 12));

    const worker = createDeliveryWorker({ db, config, logger });
    await request(app).post(`/${created.body.id}/ping`).expect(202);
    expect(await worker.runUntilIdle()).toBe(1);
    expect(receiver.requests).toHaveLength(1);
    expect(verifyWebhook(secret, receiver.requests[0].headers, receiver.requests[0].body)).toBe(true);

    const rotated = await request(app).post(`/${created.body.id}/rotate`).expect(200);
    stored = await storedSecret(created.body.id);
    expect(stored.startsWith(SEALED_PREFIX)).toBe(true);
    expect(stored).not.toContain(rotated.body.secret);
    await request(app).post(`/${created.body.id}/ping`).expect(202);
    expect(await worker.runUntilIdle()).toBe(1);
    expect(verifyWebhook(rotated.body.secret, receiver.requests[1].headers, receiver.requests[1].body)).toBe(true);
    expect(verifyWebhook(secret, receiver.requests[1].headers, receiver.requests[1].body)).toBe(false);
    await worker.stop();
  });

  it('seals plain secrets when delivery starts, re-seals them under a rotated key, and refuses to start with a key that cannot open them', async () => {
    const secret = generateWebhookSecret();
    const s = await store.insertSubscription(db, { id: ids(), name: 'old', namespace: '', url: `${receiver.url}/hook`, format: 'cloudevents', eventTypes: [], secret, enabled: true });
    expect(await storedSecret(s.id)).toBe(secret);

    const start = async (config: LadingConfig) => (await startWebhookDelivery({ db, bus: createInProcessBus(), config, logger })).stop();
    await start(configWith({ key: KEY1 }));
    const underKey1 = await storedSecret(s.id);
    expect(underKey1.startsWith(`${SEALED_PREFIX}${secretKeyId(KEY1)}:`)).toBe(true);
    expect(underKey1).not.toContain(secret);

    await start(configWith({ key: KEY2, previousKeys: [KEY1] }));
    const underKey2 = await storedSecret(s.id);
    expect(underKey2.startsWith(`${SEALED_PREFIX}${secretKeyId(KEY2)}:`)).toBe(true);
    expect(createSecretCipher({ current: KEY2 }).open(underKey2, `webhook ${s.id}`)).toBe(secret);

    await expect(start(configWith({ key: KEY1 }))).rejects.toThrow(`is encrypted under key ${secretKeyId(KEY2)}, which is neither secrets.key`);
    await expect(start(configWith({}))).rejects.toThrow(SecretCipherError);
    expect(await storedSecret(s.id)).toBe(underKey2);
    expect(await sealStoredWebhookSecrets(db, createSecretCipher({ current: KEY2 }))).toBe(0);

    // Signed with the secret it was created with, all along.
    const worker = createDeliveryWorker({ db, config: configWith({ key: KEY2 }), logger });
    await request(express().use(createWebhookAdminRouter({ db, config: configWith({ key: KEY2 }) }))).post(`/${s.id}/ping`).expect(202);
    expect(await worker.runUntilIdle()).toBe(1);
    expect(verifyWebhook(secret, receiver.requests[0].headers, receiver.requests[0].body)).toBe(true);
    await worker.stop();
  });

  it('records a delivery whose secret cannot be opened as a failed attempt naming the key, without the secret', async () => {
    const secret = generateWebhookSecret();
    const id = ids();
    const sealed = createSecretCipher({ current: KEY1 }).seal(secret, `webhook ${id}`);
    await store.insertSubscription(db, { id, name: 'x', namespace: '', url: `${receiver.url}/hook`, format: 'cloudevents', eventTypes: [], secret: sealed, enabled: true });
    const worker = createDeliveryWorker({ db, config: configWith({ key: KEY2 }, 1), logger });
    await request(express().use(createWebhookAdminRouter({ db, config: configWith({ key: KEY2 }) }))).post(`/${id}/ping`).expect(202);
    await worker.runUntilIdle();
    expect(receiver.requests).toHaveLength(0);
    const [delivery] = await store.listDeliveries(db, id, { limit: 10 });
    expect(delivery.lastError).toContain(`encrypted under key ${secretKeyId(KEY1)}`);
    expect(delivery.lastError).not.toContain(secret);
    await worker.stop();
  });
});
