/** Starts the embedded registry (`npm start`): every service in one process. */
import { telemetry } from './telemetry';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseListenAddress, runProcess, wireTelemetry } from '@lading/runtime';
import { createEmbeddedRegistry } from './embedded-registry';
import { READ_WORKER_MARK, runReadWorker } from './read-worker';
import { type ReadWorkers, planReadWorkers, startReadWorkers, withPrincipalSecret } from './read-workers';
import { createWriteEpoch } from './write-epoch';

if (!isMainThread && (workerData as Record<string, unknown> | null)?.[READ_WORKER_MARK]) {
  // A read worker of this process (read-workers.ts): the bundle is its source too.
  runReadWorker(workerData).catch((err: unknown) => {
    parentPort?.postMessage({ type: 'failed', message: (err as Error)?.message ?? String(err) });
    process.exit(1);
  });
} else {
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
        // The bundle (dist/embedded/main.cjs) starts its workers from itself; tsx from read-worker-thread.cjs.
        const entry = __filename.endsWith('.cjs') ? __filename : undefined;
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
}
