/** Starts the embedded registry (`npm start`): every service in one process. */
import { telemetry } from './telemetry';
import path from 'node:path';
import { parseListenAddress, runProcess, wireTelemetry } from '@lading/runtime';
import { createEmbeddedRegistry } from './embedded-registry';
import { createReadWorkerScaling } from './read-worker-scaling';
import { type ReadWorkers, ensurePortFree, planReadWorkers, startReadWorkers, withPrincipalSecret } from './read-workers';
import { createWriteEpoch } from './write-epoch';

runProcess('registry', 'the embedded registry: every service in one process, on PGlite and a data directory by default.', async (config, logger, stopping) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const plan = planReadWorkers(config);
  if (plan.reason) {
    // With `auto` (the default) that none can run is no news; a number asked for is.
    if (config.server.readWorkers === 'auto') logger.debug({ reason: plan.reason }, 'no read workers');
    else logger.info({ reason: plan.reason }, 'no read workers');
  }
  const withWorkers = plan.max > 0;
  const { host, port } = parseListenAddress(config.http.addr);
  if (withWorkers) {
    // The port is opened with reusePort: one another process holds must still be refused.
    await ensurePortFree(host, port);
    withPrincipalSecret(config);
  }
  const registry = await createEmbeddedRegistry(config, logger, { metrics: wired.metrics, stopping });
  if (!config.auth.enabled) {
    logger.warn('authentication is OFF (LADING_AUTH_ENABLED=false): anyone who can reach this port can push, pull and delete');
  }
  let workers: ReadWorkers | null = null;
  // With read workers, what may change a read bumps the epoch their caches are checked against.
  const epoch = createWriteEpoch();
  // With `auto`, the public app counts what the main thread serves and asks some clients to reconnect while a worker
  // starts (read-worker-scaling.ts); the workers start once the port is known.
  const scaling = plan.max > plan.count ? createReadWorkerScaling({ max: plan.max, logger }) : null;
  const publicApp = withWorkers ? epoch.watch(registry.app) : registry.app;
  return {
    app: wired.measured(scaling ? scaling.watch(publicApp) : publicApp),
    reusePort: withWorkers,
    async listening({ port: bound }) {
      if (!withWorkers) return;
      // The bundle (dist/embedded/main.cjs) starts its workers from the read path's own bundle beside it
      // (read-worker.cjs: no services, no OpenTelemetry SDK); tsx from read-worker-thread.cjs.
      const entry = __filename.endsWith('.cjs') ? path.join(path.dirname(__filename), 'read-worker.cjs') : undefined;
      workers = await startReadWorkers({
        config,
        logger,
        registry,
        epoch,
        count: plan.count,
        host,
        port: bound,
        entry,
        onFatal: () => process.exit(1),
      });
      scaling?.start(workers);
    },
    async close() {
      scaling?.close();
      await workers?.close();
      await registry.close();
      await wired.shutdown();
    },
  };
});
