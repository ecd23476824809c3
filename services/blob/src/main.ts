/** Starts the blob service as its own process (distributed mode). */
import { telemetry } from './telemetry';
import { openProcessParts, openProxyRules, runProcess, wireTelemetry } from '@lading/runtime';
import { blobPullThroughOf } from './blob-pull-through';
import { createBlobService } from './blob-service';

runProcess('blob', 'the blob service of the distributed mode: blob uploads, reads and deletes.', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const parts = await openProcessParts(config, logger, { metrics: wired.metrics });
  const deps = { ...parts.serviceDeps('blob'), store: parts.store };
  // Pull-through: blob misses in proxy namespaces are fetched here, once across replicas (fetch leases in Postgres).
  const proxies = openProxyRules(config);
  const app = createBlobService({ ...deps, pullThrough: proxies && blobPullThroughOf(deps, parts.store, proxies) });
  return {
    app: wired.measured(app),
    async close() {
      await proxies?.close();
      await parts.close();
      await wired.shutdown();
    },
  };
});
