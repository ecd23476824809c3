/** Starts the manifest service as its own process (distributed mode). */
import { openProcessParts, runProcess } from '@lading/runtime';
import { createManifestService } from './manifest-service';

runProcess('manifest', async (config, logger) => {
  const parts = await openProcessParts(config, logger);
  const app = createManifestService({
    db: parts.db,
    config,
    logger,
    events: parts.eventsFor('manifest'),
    onEventsCommitted: () => parts.relay.kick(),
  });
  return { app, close: () => parts.close() };
});
