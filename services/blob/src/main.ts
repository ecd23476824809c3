/** Starts the blob service as its own process (distributed mode). */
import { openProcessParts, runProcess } from '@lading/runtime';
import { createBlobService } from './blob-service';

runProcess('blob', async (config, logger) => {
  const parts = await openProcessParts(config, logger);
  const app = createBlobService({
    db: parts.db,
    store: parts.store,
    config,
    logger,
    events: parts.eventsFor('blob'),
    onEventsCommitted: () => parts.relay.kick(),
  });
  return { app, close: () => parts.close() };
});
