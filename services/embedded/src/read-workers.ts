/**
 * Read workers: worker threads of the embedded process that serve pulls on the process's own port, so that pull
 * throughput grows with the machine's cores while the process stays one process (one PGlite, one data directory, one
 * bus, one set of caches the writes keep true).
 *
 * Each worker runs the distributed mode's gateway (read-worker.ts) and listens on `http.addr` with `reusePort`, as
 * the main thread does: the kernel spreads new connections over the listeners (Linux), so the main thread keeps a
 * share of the clients and serves them as before. The main thread also serves its services' own apps (blob,
 * manifest, auth) on loopback ports, which the workers reach as the distributed gateway reaches its services; those
 * apps authorize nothing, so the blob and manifest ones answer only requests carrying this process's random key, and
 * the principal a worker verified travels with its proof under `upstreams.secret` (a random one when unset).
 *
 * What stays exact: a worker answers a manifest GET/HEAD by digest and a blob's descriptor from its own cache only
 * while the write epoch (write-epoch.ts) is what it was before the answer was read from the main thread, and the
 * main thread bumps it when anything that may change a read arrives and again before that is answered, so a tag
 * pushed or a manifest deleted through any connection is seen by the next read on every other (tags are never kept:
 * they go through the gateway's shared reads, one read of the manifest service per batch); pulls a worker answers
 * from its cache are handed to the audit trail (every 200 ms, and at close). What differs from the main thread: a
 * worker verifies tokens with the JWKS it fetched (refreshed as the distributed gateway refreshes it, every 30 s and
 * on an unknown key), and its requests are not in the process's request metrics (they are in the access log).
 *
 * A worker that exits unexpectedly is logged and started again; one that cannot start, or that crashes more than
 * `MAX_RESTARTS` times in a minute, stops the process (exit 1), as a failed start does.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { LadingConfig } from '@lading/config';
import type { HttpApp } from '@lading/http';
import { createHttpServer } from '@lading/runtime';
import type { Logger } from '@lading/telemetry';
import type { EmbeddedRegistry } from './embedded-registry';
import type { WriteEpoch } from './write-epoch';
import { READ_WORKER_MARK, type ReadWorkerData, type ReadWorkerMessage, WORKER_KEY_HEADER } from './read-worker';

/**
 * The worker's source for tsx and jest: a CommonJS file that loads read-worker.ts through tsx (not named
 * `read-worker.cjs`: jest would resolve `./read-worker` to it).
 */
export const READ_WORKER_SHIM = path.join(__dirname, 'read-worker-thread.cjs');

/** Unexpected exits in a minute beyond which the process gives up on its workers and exits. */
export const MAX_RESTARTS = 5;

/** How many read workers the configuration asks for, or why none run. */
export interface ReadWorkersPlan {
  /** Workers started with the process. */
  count: number;
  /**
   * The most that may run: `count` for a number, the cores but one for `auto` (started on demand,
   * read-worker-scaling.ts). 0: the process runs without them (no shared port, no loopback listeners).
   */
  max: number;
  /** Why there are none although they were asked for (logged at start). */
  reason?: string;
}

/**
 * The cores this process may use: the CPUs it may run on (`availableParallelism()`), fewer when a cgroup v2 CPU
 * quota (`cpu.max`, a container's CPU limit) allows less, rounded up. `cpuMax` is the file's text (read from
 * /sys/fs/cgroup/cpu.max by default; none outside a cgroup v2 with a quota).
 */
export function usableCores(parallelism = availableParallelism(), cpuMax = readCpuMax()): number {
  const [quota, period] = (cpuMax ?? '').trim().split(/\s+/);
  const limit = Number(quota) / Number(period);
  return Number.isFinite(limit) && limit > 0 ? Math.max(1, Math.min(parallelism, Math.ceil(limit))) : parallelism;
}

function readCpuMax(): string | undefined {
  try {
    return readFileSync('/sys/fs/cgroup/cpu.max', 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The read workers this process runs: `server.readWorkers`, a number, or `auto` (the default): none at start and up
 * to the cores but one (`cores`, `usableCores()` by default: a container's CPU limit counts), started while pulls keep the main thread busy
 * (see docs/benchmarks.md for what one costs and brings). None while the process serves HTTPS (the workers would need
 * the certificate and its reloads), has rate limits (their buckets are per thread) or a mirror namespace (answered
 * with the database's stored rules): those keep one thread; with `auto` that is said only at debug level.
 */
export function planReadWorkers(config: LadingConfig, cores = usableCores()): ReadWorkersPlan {
  const asked = config.server.readWorkers;
  const auto = asked === 'auto';
  const none = (reason: string): ReadWorkersPlan => ({ count: 0, max: 0, reason });
  if (asked === 0) return { count: 0, max: 0 };
  if (config.mode !== 'embedded') return none('read workers are for the embedded mode');
  if (config.http.tls.certificate !== undefined) return none('http.tls is set: read workers serve plain HTTP only');
  if (config.limits.addressRate > 0 || config.limits.principalRate > 0) return none('limits.addressRate or limits.principalRate is set: rate limits are kept by one thread');
  if (config.mirror.namespace !== undefined) return none('mirror.namespace is set: un-prefixed pulls are resolved by the main thread');
  if (auto) return cores > 1 ? { count: 0, max: Math.min(cores - 1, 64) } : none('one core: no read workers');
  return { count: asked, max: asked };
}

/**
 * Resolves when nothing listens on `host:port`, rejects (`EADDRINUSE`) when something does. A process with read
 * workers opens its port with `reusePort`, which would let it share the port with another process of the same user
 * that opened it so too (another registry with workers): checked first with a listener that shares nothing, so that
 * a registry started on a port in use fails as it does without workers. Port 0 (any free port) is always free.
 */
export function ensurePortFree(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/**
 * The configuration the process runs with read workers: `upstreams.secret` set (a random one when unset), so that the
 * services believe the principal a worker verified. Call it before the registry is built: the services read it then.
 */
export function withPrincipalSecret(config: LadingConfig): LadingConfig {
  if (!config.upstreams.secret) config.upstreams.secret = randomBytes(32).toString('base64url');
  return config;
}

/** Running read workers. */
export interface ReadWorkers {
  /** The worker threads running now (a restarted worker is a new one). */
  threads(): readonly Worker[];
  /** Starts one more worker; resolves once it listens. */
  add(): Promise<void>;
  /** Stops the last worker started (it finishes what it serves); not counted as a crash. */
  remove(): Promise<void>;
  /** How many requests each running worker has served. */
  served(): Promise<number[]>;
  /** Hands the pulls the workers answered from their caches so far to the registry's `notePulls` now. */
  flushPulls(): Promise<void>;
  /** Stops the workers (each finishes what it serves), then the loopback listeners. */
  close(): Promise<void>;
}

/** What the read workers are started with. */
export interface ReadWorkersOptions {
  /** The process's configuration, with `upstreams.secret` set (`withPrincipalSecret`). */
  config: LadingConfig;
  logger: Logger;
  /**
   * The registry: its services (served to the workers on loopback), its bus (every event bumps the epoch: the garbage
   * collector's deletes reach the workers' caches this way), whether pull-through covers a repository (the workers
   * keep no answer of one: its pulls are noted) and its audit trail (the pulls the workers answered from their caches).
   */
  registry: Pick<EmbeddedRegistry, 'services' | 'bus' | 'isProxied' | 'notePulls'>;
  count: number;
  /** The write epoch: the process's public app must be wrapped in its `watch` (the loopback listeners are here). */
  epoch: WriteEpoch;
  /** Where the process listens: the workers listen there too. */
  host: string;
  port: number;
  /**
   * The file a worker thread runs: the read path's bundle (dist/embedded/read-worker.cjs, beside the process's) or,
   * by default, the tsx shim.
   */
  entry?: string;
  /** Called when the workers cannot be kept running (too many crashes): the process should exit non-zero. */
  onFatal?(err: Error): void;
  /** Called when a worker that exited unexpectedly listens again. */
  onRestarted?(index: number): void;
}

/** The key's SHA-256, compared in constant time (digests have one length whatever was sent). */
const digestOf = (text: string): Buffer => createHash('sha256').update(text).digest();

function keyHolds(sent: string | string[] | undefined, keyDigest: Buffer): boolean {
  return typeof sent === 'string' && timingSafeEqual(digestOf(sent), keyDigest);
}

/**
 * A service's app as the workers reach it. A request with the key comes from a worker: the key is dropped and the
 * client's address (the last X-Forwarded-For entry, which the worker appended) is made the socket's, so that
 * `http.trustedProxies` means what it means on the main thread. Without the key, `open` services (auth, which checks
 * credentials itself) answer as anyone's; the others refuse with 403.
 */
function guarded(app: RequestListener, key: Buffer, open: boolean): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (!keyHolds(req.headers[WORKER_KEY_HEADER], key)) {
      if (!open) {
        res.writeHead(403, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"DENIED","message":"not a read worker of this process"}]}');
        return;
      }
      delete req.headers[WORKER_KEY_HEADER];
      app(req, res);
      return;
    }
    delete req.headers[WORKER_KEY_HEADER];
    const forwarded = typeof req.headers['x-forwarded-for'] === 'string' ? req.headers['x-forwarded-for'].split(',').map((s) => s.trim()) : [];
    const client = forwarded.pop();
    if (forwarded.length > 0) req.headers['x-forwarded-for'] = forwarded.join(', ');
    else delete req.headers['x-forwarded-for'];
    if (client) Object.defineProperty(req.socket, 'remoteAddress', { value: client, configurable: true });
    app(req, res);
  };
}

function listenLoopback(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      resolve(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** Starts `count` read workers on the process's port; resolves once every one listens. */
export async function startReadWorkers(options: ReadWorkersOptions): Promise<ReadWorkers> {
  const { config, logger } = options;
  if (!config.upstreams.secret) throw new Error('read workers need upstreams.secret (withPrincipalSecret)');
  const keyText = randomBytes(32).toString('base64url');
  const key = digestOf(keyText);
  const { epoch } = options;
  const watched = (app: unknown) => epoch.watch(app as HttpApp) as RequestListener;
  const loopback = {
    blob: createHttpServer(guarded(watched(options.registry.services.blob), key, false), config.limits),
    manifest: createHttpServer(guarded(watched(options.registry.services.manifest), key, false), config.limits),
    auth: createHttpServer(guarded(watched(options.registry.services.auth), key, true), config.limits),
  };
  const unsubscribe = await options.registry.bus.subscribe(async () => epoch.bump());
  const upstreams = {
    blob: await listenLoopback(loopback.blob),
    manifest: await listenLoopback(loopback.manifest),
    auth: await listenLoopback(loopback.auth),
  };
  const entry = options.entry ?? READ_WORKER_SHIM;
  const running: Array<Worker | null> = [];
  const crashes: number[] = [];
  /** Workers stopped on purpose (`remove`): their exit is not a crash. */
  const stopped = new WeakSet<Worker>();
  let closing = false;
  let nextRequest = 0;

  function spawn(index: number): Promise<Worker> {
    const workerData: ReadWorkerData = { [READ_WORKER_MARK]: true, config, index, host: options.host, port: options.port, upstreams, key: keyText, epoch: epoch.buffer };
    // Named, so that its thread shows as read-worker-<n> in /proc and top (the bench reads its CPU by that name).
    const worker = new Worker(entry, { workerData, stdout: false, stderr: false, name: `read-worker-${index}` });
    running[index] = worker;
    return new Promise((resolve, reject) => {
      let listening = false;
      worker.on('message', (message: ReadWorkerMessage) => {
        if (message.type === 'pulls') {
          for (const [principal, repository, count] of message.counts) options.registry.notePulls(principal, repository, count);
        } else if (message.type === 'proxied') {
          worker.postMessage({ type: 'proxiedAnswer', id: message.id, proxied: options.registry.isProxied(message.repository) } satisfies ReadWorkerMessage);
        } else if (message.type === 'listening') {
          listening = true;
          resolve(worker);
        } else if (message.type === 'failed') reject(new Error(`read worker ${index} failed to start: ${message.message}`));
      });
      worker.on('error', (err) => {
        if (!listening) reject(err);
        else logger.error({ err, readWorker: index }, 'a read worker failed');
      });
      worker.on('exit', (code) => {
        if (running[index] === worker) running[index] = null;
        if (!listening) return reject(new Error(`read worker ${index} exited (${code}) before it listened`));
        if (closing || stopped.has(worker)) return;
        const now = Date.now();
        crashes.push(now);
        while (crashes.length > 0 && crashes[0] < now - 60_000) crashes.shift();
        if (crashes.length > MAX_RESTARTS) {
          logger.fatal({ readWorker: index, code, crashes: crashes.length }, 'read workers keep exiting: giving up');
          options.onFatal?.(new Error(`read workers exited ${crashes.length} times in a minute`));
          return;
        }
        logger.error({ readWorker: index, code }, 'a read worker exited unexpectedly: starting it again');
        spawn(index).then(() => options.onRestarted?.(index), (err: unknown) => {
          logger.fatal({ err, readWorker: index }, 'a read worker could not be started again');
          options.onFatal?.(err instanceof Error ? err : new Error(String(err)));
        });
      });
    });
  }

  async function stop(worker: Worker): Promise<void> {
    stopped.add(worker);
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'close' } satisfies ReadWorkerMessage);
    // What a worker still serves after this is cut: shutdown has its own 10 s bound (runProcess).
    const timer = setTimeout(() => void worker.terminate(), 8_000);
    await exited;
    clearTimeout(timer);
  }

  async function closeLoopback(): Promise<void> {
    await Promise.all([closeServer(loopback.blob), closeServer(loopback.manifest), closeServer(loopback.auth)]);
    await unsubscribe();
  }

  /** Sends `message(id)` to every running worker and resolves with each one's answer to it. */
  function ask(message: (id: number) => ReadWorkerMessage, answered: (m: ReadWorkerMessage, id: number) => number | null): Promise<number[]> {
    const workers = running.filter((w): w is Worker => w !== null);
    return Promise.all(
      workers.map(
        (worker) =>
          new Promise<number>((resolve) => {
            const id = nextRequest++;
            const onMessage = (m: ReadWorkerMessage) => {
              const value = answered(m, id);
              if (value === null) return;
              worker.off('message', onMessage);
              resolve(value);
            };
            worker.on('message', onMessage);
            worker.postMessage(message(id));
          }),
      ),
    );
  }

  try {
    await Promise.all(Array.from({ length: options.count }, (_, index) => spawn(index)));
  } catch (err) {
    closing = true;
    await Promise.all(running.filter((w): w is Worker => w !== null).map((w) => w.terminate()));
    await closeLoopback();
    throw err;
  }
  logger.info({ readWorkers: options.count }, 'read workers are listening');

  return {
    threads: () => running.filter((w): w is Worker => w !== null),
    async add() {
      if (closing) throw new Error('the read workers are closing');
      const free = running.indexOf(null);
      await spawn(free === -1 ? running.length : free);
    },
    async remove() {
      const index = running.findLastIndex((w) => w !== null);
      if (index === -1) return;
      const worker = running[index]!;
      running[index] = null;
      await stop(worker);
    },
    served: () => ask((id) => ({ type: 'count', id }), (m, id) => (m.type === 'served' && m.id === id ? m.count : null)),
    async flushPulls() {
      await ask((id) => ({ type: 'flush', id }), (m, id) => (m.type === 'flushed' && m.id === id ? 0 : null));
    },
    async close() {
      closing = true;
      await Promise.all(running.filter((w): w is Worker => w !== null).map(stop));
      await closeLoopback();
    },
  };
}
