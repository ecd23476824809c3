/** Starts the embedded registry: `npm start`. Reads configuration, wires the real parts, listens. */
import { ConfigError, loadConfig } from '@lading/config';
import { createLogger } from '@lading/telemetry';
import { createEmbeddedRegistry } from './embedded-registry';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`lading: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ service: 'registry', level: config.log.level });
  const registry = await createEmbeddedRegistry(config, logger);
  const separator = config.http.addr.lastIndexOf(':');
  const host = config.http.addr.slice(0, separator).replace(/^\[|\]$/g, '') || '0.0.0.0';
  const port = Number(config.http.addr.slice(separator + 1));
  const server = registry.app.listen(port, host, () => {
    logger.info({ addr: config.http.addr, dataDir: config.data.dir, mode: 'embedded' }, 'lading is serving the OCI Distribution API');
    logger.warn('authentication is OFF in this build: anyone who can reach this port can push, pull and delete');
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    server.close(() => void registry.close().then(() => process.exit(0)));
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`lading: failed to start: ${(err as Error)?.message ?? err}\n`);
  process.exit(1);
});
