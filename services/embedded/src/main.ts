/** Starts the embedded registry (`npm start`): every service in one process. */
import { telemetry } from './telemetry';
import path from 'node:path';
import { parseListenAddress, runProcess, wireTelemetry } from '@lading/runtime';
import { createEmbeddedRegistry } from './embedded-registry';
import { type ReadWorkers, planReadWorkers, startReadWorkers, withPrincipalSecret } from './read-workers';
import { createWriteEpoch } from './write-epoch';

runProcess('registry', 'the embedded registry: every service in one process, on PGlite and a data directory by default.', async (config, logger, stopping) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const plan = planReadWorkers(config);
  if (plan.reason) logger.info({ reason: plan.reason }, 'no read workers');
  if (plan.count > 0) withPrincipalSecret(config);
  const registry = await createEmbeddedRegistry(config, logger, { metrics: wired.metrics, stopping });
  if (!config.auth.enabled) {
    logger.warn('authentication is OFF (LADING_AUTH_ENABLED=false): anyone who can reach this port can push, pull and delete');
  }
  let workers: ReadWorkers | null = null;
  // With read workers, what may change a read bumps the epoch their caches are checked against.
  const epoch = createWriteEpoch();
  return {
    app: wired.measured(plan.count > 0 ? epoch.watch(registry.app) : registry.app),
    reusePort: plan.count > 0,
    async listening({ port }) {
      if (plan.count === 0) return;
      // The bundle (dist/embedded/main.cjs) starts its workers from the read path's own bundle beside it
      // (read-worker.cjs: no services, no OpenTelemetry SDK); tsx from read-worker-thread.cjs.
      const entry = __filename.endsWith('.cjs') ? path.join(path.dirname(__filename), 'read-worker.cjs') : undefined;
      workers = await startReadWorkers({
        config,
        logger,
        registry,
        epoch,
        count: plan.count,
        host: parseListenAddress(config.http.addr).host,
        port,
        entry,
        onFatal: () => process.exit(1),
      });
    },
    async close() {
      await workers?.close();
      await registry.close();
      await wired.shutdown();
    },
  };
});
