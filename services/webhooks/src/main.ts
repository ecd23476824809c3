/** Starts the webhooks service as its own process (distributed mode): the enqueuer, the delivery worker, and their HTTP face. */
import { telemetry } from './telemetry';
import { startSecretCipher } from '@lading/access';
import { openProcessParts, runProcess, wireTelemetry } from '@lading/runtime';
import { deliveryStats } from '@lading/webhooks';
import { startWebhookDelivery } from './webhook-delivery';
import { createWebhooksService } from './webhooks-service';

runProcess('webhooks', 'the webhooks service of the distributed mode: the enqueuer, the delivery worker and their HTTP face.', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const { metrics } = wired;
  const parts = await openProcessParts(config, logger, { metrics });
  const secrets = startSecretCipher(config, logger);
  const delivery = config.webhooks.enabled ? await startWebhookDelivery({ db: parts.db, bus: parts.bus, config, logger, metrics, secrets }) : null;
  if (!delivery) logger.warn('webhooks.enabled is false: this webhooks process only reports');
  // A process that does not deliver still reports the queue (delivery observes it itself).
  const stopObserving = delivery ? undefined : metrics.observeWebhookQueue(() => deliveryStats(parts.db));
  const app = createWebhooksService({ db: parts.db, logger });
  return {
    app: wired.measured(app),
    async close() {
      stopObserving?.();
      await delivery?.stop();
      await parts.close();
      await wired.shutdown();
    },
  };
});
