/**
 * The webhooks service's HTTP face: `/healthz`, `/readyz` (the database answers) and `/metrics` (Prometheus text:
 * deliveries by outcome, failed attempts, dead letters, pending deliveries). The delivery itself runs on its own
 * (`startWebhookDelivery`); the app only reports on it.
 */
import type { Express } from 'express';
import { createServiceApp, finishServiceApp } from '@lading/http';
import type { Database } from '@lading/metadata';
import type { Logger } from '@lading/telemetry';
import type { DeliveryWorker } from './delivery-worker';

/** What the webhooks service's app is built from. */
export interface WebhooksServiceDeps {
  db: Database;
  worker: DeliveryWorker;
  logger: Logger;
}

/** Creates the webhooks service's express app. */
export function createWebhooksService(deps: WebhooksServiceDeps): Express {
  const app = createServiceApp(async () => {
    await deps.db.query('SELECT 1');
  });
  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', 'text/plain; version=0.0.4');
    res.end(await deps.worker.metricsText());
  });
  return finishServiceApp(app, deps.logger);
}
