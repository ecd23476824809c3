/**
 * The embedded registry wired for telemetry the way `services/embedded/src/main.ts` is to be wired (see
 * docs/observability.md): telemetry started by the first import, the HTTP telemetry middleware in front of the
 * app, the metrics debug port, spans flushed on shutdown. trace.spec.ts runs it as a process.
 */
import { telemetry } from './embedded-telemetry';
import express from 'express';
import { createEmbeddedRegistry } from '@lading/embedded';
import { matchRoute } from '@lading/oci';
import { runProcess } from '@lading/runtime';
import { createHttpTelemetry, createRegistryMetrics } from '@lading/telemetry';

runProcess('registry', async (config, logger) => {
  await telemetry.serveMetrics(config.telemetry.metricsAddr, (err) => logger.warn({ err }, 'metrics port unavailable; serving without it'));
  const metrics = createRegistryMetrics(telemetry.meter);
  const registry = await createEmbeddedRegistry(config, logger);
  const app = express();
  app.use(createHttpTelemetry({ metrics, routeOf: (req) => matchRoute(req.path)?.route.name }));
  app.use(registry.app);
  return {
    app,
    async close() {
      await registry.close();
      await telemetry.shutdown();
    },
  };
});
