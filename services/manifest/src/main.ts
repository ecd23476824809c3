/** Starts the manifest service as its own process (distributed mode). */
import { telemetry } from './telemetry';
import { startSecretCipher } from '@lading/access';
import { openProcessParts, openProxyRules, openQuotaCoverage, runProcess, wireTelemetry } from '@lading/runtime';
import { createManifestService } from './manifest-service';
import { wireManifestPullThrough } from './manifest-pull-through-wiring';
import { startPullAudit } from './pull-audit';

runProcess('manifest', 'the manifest service of the distributed mode: manifests, tags, referrers and the catalog.', async (config, logger, stopping) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const parts = await openProcessParts(config, logger, { metrics: wired.metrics });
  const deps = parts.serviceDeps('manifest');
  // Pull-through: manifest misses in proxy namespaces (config or stored rules) are fetched here, once across
  // replicas; the blobs they reference are blob misses of the blob service when a client asks for them.
  const proxies = await openProxyRules(config, { db: parts.db, cipher: startSecretCipher(config, logger), logger });
  const pullThrough = wireManifestPullThrough(deps, proxies);
  const pullAudit = startPullAudit(deps);
  // Which namespaces have a quota, read every few seconds: pushes no quota covers skip the quota query.
  const quotas = await openQuotaCoverage({ db: parts.db, logger });
  const app = createManifestService({ ...deps, feed: parts.bus, stopping, store: parts.store, pullThrough: pullThrough.pullThrough, pulls: pullThrough.pulls, pullAudit, proxies, quotas });
  return {
    app: wired.measured(app),
    async close() {
      await pullThrough.close();
      await pullAudit?.stop();
      await proxies.close();
      await quotas.close();
      await parts.close();
      await wired.shutdown();
    },
  };
});
