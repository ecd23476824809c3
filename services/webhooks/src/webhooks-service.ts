/**
 * The webhooks service's HTTP face: `/healthz` and `/readyz` (the database answers). The delivery itself runs on its
 * own (`startWebhookDelivery`); its metrics are the process's, on the debug port of @lading/telemetry
 * (`lading_webhook_*`).
 */
import type { Express } from 'express';
import { createServiceApp, finishServiceApp } from '@lading/http';
import { type Database, pingDatabase } from '@lading/metadata';
import type { Logger } from '@lading/telemetry';

/** What the webhooks service's app is built from. */
export interface WebhooksServiceDeps {
  db: Database;
  logger: Logger;
}

/** Creates the webhooks service's express app. */
export function createWebhooksService(deps: WebhooksServiceDeps): Express {
  const app = createServiceApp(async () => {
    await pingDatabase(deps.db);
  });
  return finishServiceApp(app, deps.logger);
}
