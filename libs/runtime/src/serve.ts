/** Running a process: configuration errors stop start-up with the key named, signals shut down cleanly. */
import type { Server } from 'node:http';
import type { Express } from 'express';
import { ConfigError, LadingConfig, loadConfig } from '@lading/config';
import { Logger, createLogger } from '@lading/telemetry';

/** Splits `host:port` (IPv6 in brackets) into its parts. */
export function parseListenAddress(addr: string): { host: string; port: number } {
  const separator = addr.lastIndexOf(':');
  return { host: addr.slice(0, separator).replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(addr.slice(separator + 1)) };
}

/** Loads the configuration, or exits with status 2 and one line naming the bad key. */
export function loadConfigOrExit(): LadingConfig {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`lading: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** What `runProcess` starts: an app to serve and what to close on shutdown. */
export interface RunningApp {
  app: Express;
  close(): Promise<void>;
}

/**
 * Runs one Lading process: loads configuration, builds the app with `start`, listens on `http.addr`, and closes
 * everything on SIGTERM/SIGINT. A failure to start exits non-zero with one line, not a stack.
 */
export function runProcess(service: string, start: (config: LadingConfig, logger: Logger) => Promise<RunningApp>): void {
  const config = loadConfigOrExit();
  const logger = createLogger({ service, level: config.log.level });
  start(config, logger)
    .then(({ app, close }) => {
      const { host, port } = parseListenAddress(config.http.addr);
      const server: Server = app.listen(port, host, () => {
        logger.info({ addr: config.http.addr, mode: config.mode }, `lading-${service} is listening`);
      });
      server.keepAliveTimeout = 65_000;
      server.headersTimeout = 66_000;
      server.requestTimeout = 0;
      const shutdown = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        server.close(() => void close().finally(() => process.exit(0)));
        server.closeIdleConnections();
        setTimeout(() => process.exit(0), 10_000).unref();
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    })
    .catch((err) => {
      logger.fatal({ err }, 'failed to start');
      process.stderr.write(`lading-${service}: failed to start: ${(err as Error)?.message ?? err}\n`);
      process.exit(1);
    });
}
