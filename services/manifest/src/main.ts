/** Starts the manifest service as its own process (distributed mode). */
import { telemetry } from './telemetry';
import { openProcessParts, runProcess, wireTelemetry } from '@lading/runtime';
import { createManifestService } from './manifest-service';

runProcess('manifest', 'the manifest service of the distributed mode: manifests, tags, referrers and the catalog.', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const parts = await openProcessParts(config, logger, { metrics: wired.metrics });
  const app = createManifestService({ ...parts.serviceDeps('manifest'), store: parts.store });
  return {
    app: wired.measured(app),
    async close() {
      await parts.close();
      await wired.shutdown();
    },
  };
});
