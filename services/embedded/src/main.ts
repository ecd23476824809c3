/** Starts the embedded registry (`npm start`): every service in one process. */
import { runProcess } from '@lading/runtime';
import { createEmbeddedRegistry } from './embedded-registry';

runProcess('registry', async (config, logger) => {
  const registry = await createEmbeddedRegistry(config, logger);
  if (!config.auth.enabled) {
    logger.warn('authentication is OFF (LADING_AUTH_ENABLED=false): anyone who can reach this port can push, pull and delete');
  }
  return registry;
});
