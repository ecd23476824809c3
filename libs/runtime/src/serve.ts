/** Running a process: configuration errors stop start-up with the key named, signals shut down cleanly. */
import { IncomingMessage, RequestListener, Server, ServerResponse, createServer } from 'node:http';
import { Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import path from 'node:path';
import { ConfigError, LadingConfig, durationMs, loadConfig } from '@lading/config';
import { HttpApp, answerClientError } from '@lading/http';
import { SchemaVersionError } from '@lading/metadata';
import { Logger, createLogger } from '@lading/telemetry';
import { answerCommandLine } from './command-line';
import { DataDirLockedError } from './data-dir-lock';
import { TlsFiles, TlsFilesError, TlsPair, readTlsPair, tlsFilesOf, watchTlsFiles } from './tls-credentials';
import { ladingVersion } from './version';

/** Splits `host:port` (IPv6 in brackets) into its parts. */
export function parseListenAddress(addr: string): { host: string; port: number } {
  const separator = addr.lastIndexOf(':');
  return { host: addr.slice(0, separator).replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(addr.slice(separator + 1)) };
}

/** Loads the configuration, or exits with status 2 and one line per problem (the key and its variable, or the file and line). */
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

/** How often node checks connections for the headers timeout (its default, 30 s, would stretch a 20 s limit to 50). */
const CONNECTION_CHECK_MS = 1000;

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return length !== undefined ? length !== '0' : req.headers['transfer-encoding'] !== undefined;
}

/**
 * Cuts a request whose body goes silent for `idleMs`: the socket's inactivity timer runs while the body streams in
 * (node destroys a socket whose timeout nobody handles) and is stopped once the body is complete, so that a slow
 * handler is never cut, and keep-alive idling stays under `keepAliveTimeout`.
 */
function cutSilentBodies(req: IncomingMessage, res: ServerResponse, idleMs: number): void {
  if (idleMs <= 0 || !hasBody(req)) return;
  req.socket.setTimeout(idleMs);
  req.once('end', () => {
    if (!res.writableFinished) req.socket.setTimeout(0);
  });
}

/**
 * Creates the HTTP server of a process with the limits of `limits.*`: the largest request head, the time a client
 * has to send it, how long an idle keep-alive connection stays, and how long a request body may stay silent.
 * Requests themselves have no overall deadline (a 2 GB push takes what it takes). Given a certificate and key
 * (`tls`), it serves HTTPS (HTTP/1.1) instead, with the same limits and the same answers: TLS only wraps the socket.
 */
export function createHttpServer(app: RequestListener, limits: LadingConfig['limits']): Server;
export function createHttpServer(app: RequestListener, limits: LadingConfig['limits'], tls: TlsPair): HttpsServer;
export function createHttpServer(app: RequestListener, limits: LadingConfig['limits'], tls?: TlsPair): Server | HttpsServer {
  const headersTimeout = durationMs(limits.headersTimeout);
  const options = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout,
    requestTimeout: 0,
    keepAliveTimeout: durationMs(limits.keepAliveTimeout),
    connectionsCheckingInterval: Math.min(CONNECTION_CHECK_MS, headersTimeout),
  };
  const server = tls ? createHttpsServer({ ...options, cert: tls.cert, key: tls.key }, app) : createServer(options, app);
  const bodyIdleMs = durationMs(limits.bodyIdleTimeout);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => cutSilentBodies(req, res, bodyIdleMs));
  // What node's parser refuses (a head too large, a malformed request) is answered in the OCI envelope too.
  server.on('clientError', answerClientError);
  return server;
}

/**
 * The start every Lading process shares (`runProcess`, `runTask`): answers its command line (`--help`, `--version`,
 * or refuses an argument, exiting), loads its configuration (or exits 2), makes its logger and logs that it starts.
 */
function beginProcess(service: string, about: string, runs?: string): { config: LadingConfig; logger: Logger } {
  const command = `node ${path.relative(process.cwd(), process.argv[1] ?? '') || process.argv[1]}`;
  const exitStatus = answerCommandLine(process.argv.slice(2), { service, about, command, runs }, ladingVersion, {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  });
  // Nothing has started yet (telemetry's import opens no port), so exiting here leaves nothing behind.
  if (exitStatus !== undefined) process.exit(exitStatus);
  const config = loadConfigOrExit();
  const logger = createLogger({ service, level: config.log.level });
  const { version, commit } = ladingVersion();
  logger.info({ version, commit, mode: config.mode }, `lading-${service} is starting`);
  return { config, logger };
}

/** What `runProcess` starts: an app to serve and what to close on shutdown. */
export interface RunningApp {
  app: HttpApp;
  close(): Promise<void>;
  /**
   * Whether other listeners (the embedded mode's read workers) share the port: it is then opened with `reusePort`
   * (Linux spreads the connections over every listener of the port).
   */
  reusePort?: boolean;
  /**
   * Called once the server listens, with the port it got (the configured one, or the one the system chose for port
   * 0); a rejection fails the start (exit 1), as one from `start` does.
   */
  listening?(address: { host: string; port: number }): Promise<void>;
}

/**
 * Runs one Lading process: answers `--help` and `--version` (and refuses other arguments) before anything starts, loads
 * configuration, reads the TLS certificate and key when `http.tls` names them, builds the app with `start`, listens on
 * `http.addr` (HTTPS with TLS, reloading the pair when its files change), and closes everything on SIGTERM/SIGINT
 * (first aborting the `stopping` signal `start` was given). A
 * failure to start exits non-zero with one line, not a stack; a TLS file that cannot be read or is bad
 * (`TlsFilesError`) and a data directory held by another process (`DataDirLockedError`) are refused that way before
 * anything is opened.
 *
 * @param service the process is `lading-<service>`
 * @param about one sentence for `--help`: what the process is
 */
export function runProcess(service: string, about: string, start: (config: LadingConfig, logger: Logger, stopping: AbortSignal) => Promise<RunningApp>): void {
  const { config, logger } = beginProcess(service, about);
  const startedAt = performance.now();
  const tlsFiles = tlsFilesOf(config);
  let tls: { files: TlsFiles; pair: TlsPair } | null;
  try {
    tls = tlsFiles && { files: tlsFiles, pair: readTlsPair(tlsFiles) };
  } catch (err) {
    failedToStart(service, logger, err);
  }
  // Aborted first thing at shutdown: answers that never end by themselves (the console's live feed) end on it, so
  // that the server can close and `close` runs before the forced exit.
  const stopping = new AbortController();
  start(config, logger, stopping.signal)
    .then(({ app, close, reusePort, listening }) => {
      const { host, port } = parseListenAddress(config.http.addr);
      const server = tls ? createHttpServer(app, config.limits, tls.pair) : createHttpServer(app, config.limits);
      const tlsWatcher = tls ? watchTlsFiles(server as HttpsServer, tls.files, tls.pair, logger) : null;
      server.listen({ port, host, reusePort: reusePort === true }, () => {
        logger.info({ addr: config.http.addr, mode: config.mode, scheme: tls ? 'https' : 'http', startMs: Math.round(performance.now() - startedAt) }, `lading-${service} is listening`);
        const bound = server.address();
        listening?.({ host, port: typeof bound === 'object' && bound ? bound.port : port }).catch((err: unknown) => failedToStart(service, logger, err));
      });
      const shutdown = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        stopping.abort();
        void tlsWatcher?.stop();
        server.close(() => void close().finally(() => process.exit(0)));
        server.closeIdleConnections();
        setTimeout(() => process.exit(0), 10_000).unref();
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    })
    .catch((err) => failedToStart(service, logger, err));
}

/**
 * Runs one Lading one-shot (a job, such as `lading-migrate`): answers `--help` and `--version` like `runProcess`,
 * loads configuration, runs `task`, and exits 0 when it resolves. A failure exits 1 with one line, and a refusal
 * (a held data directory, a schema the release does not run on) without a stack, as `runProcess` does.
 *
 * @param service the process is `lading-<service>`
 * @param about one sentence for `--help`: what the process is
 * @param runs for `--help`: what it does when started, and when it exits
 */
export function runTask(service: string, about: string, runs: string, task: (config: LadingConfig, logger: Logger) => Promise<void>): void {
  const { config, logger } = beginProcess(service, about, runs);
  task(config, logger).then(
    () => process.exit(0),
    (err: unknown) => failedToStart(service, logger, err, 'failed'),
  );
}

/**
 * Exits with status 1 and one line; a refusal (a bad TLS file, a held data directory, a database schema this release
 * does not run on) is an answer, not a fault, and gets no stack.
 */
function failedToStart(service: string, logger: Logger, err: unknown, failed = 'failed to start'): never {
  if (err instanceof DataDirLockedError) logger.fatal({ dir: err.dir, holderPid: err.holderPid }, err.message);
  else if (err instanceof TlsFilesError) logger.fatal(err.message);
  else if (err instanceof SchemaVersionError) logger.fatal({ databaseVersion: err.status.databaseVersion, schemaVersion: err.status.codeVersion }, err.message);
  else logger.fatal({ err }, failed);
  process.stderr.write(`lading-${service}: ${failed}: ${(err as Error)?.message ?? err}\n`);
  process.exit(1);
}
