/** Starts the embedded registry (`npm start`): every service in one process. */
import { telemetry } from './telemetry';
import { runProcess, wireTelemetry } from '@lading/runtime';
import { createEmbeddedRegistry } from './embedded-registry';

runProcess('registry', 'the embedded registry: every service in one process, on PGlite and a data directory by default.', async (config, logger, stopping) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const registry = await createEmbeddedRegistry(config, logger, { metrics: wired.metrics, stopping });
  if (!config.auth.enabled) {
    logger.warn('authentication is OFF (LADING_AUTH_ENABLED=false): anyone who can reach this port can push, pull and delete');
  }
  return {
    app: wired.measured(registry.app),
    async close() {
      await registry.close();
      await wired.shutdown();
    },
  };
});
