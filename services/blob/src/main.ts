/** Starts the blob service as its own process (distributed mode). */
import { telemetry } from './telemetry';
import { startSecretCipher } from '@lading/access';
import { openProcessParts, openProxyRules, openQuotaCoverage, runProcess, wireTelemetry } from '@lading/runtime';
import { blobPullThroughOf } from './blob-pull-through';
import { createBlobService } from './blob-service';

runProcess('blob', 'the blob service of the distributed mode: blob uploads, reads and deletes.', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const parts = await openProcessParts(config, logger, { metrics: wired.metrics });
  const deps = { ...parts.serviceDeps('blob'), store: parts.store };
  // Pull-through: blob misses in proxy namespaces (config or stored rules) are fetched here, once across replicas
  // (fetch leases in Postgres); pushes into them are refused.
  const proxies = await openProxyRules(config, { db: parts.db, cipher: startSecretCipher(config, logger), logger });
  // Which namespaces have a quota, read every few seconds: blob commits no quota covers skip the quota query.
  const quotas = await openQuotaCoverage({ db: parts.db, logger });
  const app = createBlobService({ ...deps, pullThrough: blobPullThroughOf(deps, parts.store, proxies), proxies, quotas });
  return {
    app: wired.measured(app),
    async close() {
      await proxies.close();
      await quotas.close();
      await parts.close();
      await wired.shutdown();
    },
  };
});
