/** Running webhook delivery in a process: the enqueuer on the bus and the delivery worker, wired together. */
import { secretCipherFromConfig } from '@lading/access';
import type { EventBus } from '@lading/events';
import { createUuidV7Generator } from '@lading/events';
import type { RegistryMetrics } from '@lading/telemetry';
import { deliveryStats, sealStoredWebhookSecrets } from '@lading/webhooks';
import { DeliveryWorker, DeliveryWorkerDeps, createDeliveryWorker } from './delivery-worker';
import { subscribeEnqueuer } from './delivery-enqueuer';

/** What running webhook delivery takes: the worker's dependencies and the bus to consume. */
export interface WebhookDeliveryDeps extends DeliveryWorkerDeps {
  bus: EventBus;
  /** The worker's counters, and the queue's gauges (`lading_webhook_pending`, `_dead_letters`) read at each collection. */
  metrics?: RegistryMetrics;
}

/** Webhook delivery running in this process. */
export interface RunningWebhookDelivery {
  worker: DeliveryWorker;
  stop(): Promise<void>;
}

/**
 * Seals the stored webhook secrets under the current key (rejecting, before anything starts, when one cannot be
 * opened), subscribes the enqueuer (consumer group `lading-webhooks`) and starts the worker, which each queued
 * delivery wakes; with metrics, the queue's gauges are observed until it stops.
 */
export async function startWebhookDelivery(deps: WebhookDeliveryDeps): Promise<RunningWebhookDelivery> {
  const secrets = deps.secrets ?? secretCipherFromConfig(deps.config.secrets);
  const sealed = await sealStoredWebhookSecrets(deps.db, secrets);
  if (sealed > 0) deps.logger.info({ sealed, keyId: secrets.keyId }, 'webhook secrets sealed under secrets.key');
  const worker = createDeliveryWorker({ ...deps, secrets });
  const unsubscribe = await subscribeEnqueuer(deps.bus, { db: deps.db, ids: createUuidV7Generator(), onQueued: () => worker.wake() });
  worker.start();
  const stopObserving = deps.metrics?.observeWebhookQueue(() => deliveryStats(deps.db));
  return {
    worker,
    async stop() {
      stopObserving?.();
      await unsubscribe();
      await worker.stop();
    },
  };
}
