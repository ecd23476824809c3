/** Starts the blob service as its own process (distributed mode). */
import { telemetry } from './telemetry';
import { openProcessParts, runProcess, wireTelemetry } from '@lading/runtime';
import { createBlobService } from './blob-service';

runProcess('blob', 'the blob service of the distributed mode: blob uploads, reads and deletes.', async (config, logger) => {
  const wired = await wireTelemetry(telemetry, config, logger);
  const parts = await openProcessParts(config, logger, { metrics: wired.metrics });
  const app = createBlobService({ ...parts.serviceDeps('blob'), store: parts.store });
  return {
    app: wired.measured(app),
    async close() {
      await parts.close();
      await wired.shutdown();
    },
  };
});
