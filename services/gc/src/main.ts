/** Starts the gc service as its own process (distributed mode): the collector's loops and its HTTP face. */
import { telemetry } from './telemetry';
import { startSecretCipher } from '@lading/access';
import { openProcessParts, openProxyRules, runProcess, wireTelemetry } from '@lading/runtime';
import { createGcService } from './gc-service';
import { createGcWorker } from './gc-worker';

runProcess('gc', 'the garbage collector of the distributed mode: its loops and its HTTP face.', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const parts = await openProcessParts(config, logger, { metrics: wired.metrics });
  // Eviction follows every proxy rule's evictAfter, config or stored.
  const proxyRules = await openProxyRules(config, { db: parts.db, cipher: startSecretCipher(config, logger), logger });
  const worker = createGcWorker({ ...parts.serviceDeps('gc'), store: parts.store, bus: parts.bus, proxyRules });
  if (config.gc.enabled) worker.start();
  else logger.warn('gc.enabled is false: this gc process only reports');
  const app = createGcService({ db: parts.db, store: parts.store, worker, logger, adminSecret: config.upstreams.secret });
  return {
    app: wired.measured(app),
    async close() {
      await worker.stop();
      await proxyRules.close();
      await parts.close();
      await wired.shutdown();
    },
  };
});
