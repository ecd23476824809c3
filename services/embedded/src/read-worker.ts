/**
 * The body of one read worker of the embedded process (see read-workers.ts): the distributed mode's gateway, run in a
 * worker thread, listening on the process's own port (`reusePort`), with the main thread's services as its upstreams.
 *
 * Everything the gateway does is done here, on this thread's core: HTTP parsing, token verification (with the keys
 * the main thread's auth service publishes at its JWKS), the access log, the route table; manifest GET/HEAD go through
 * the gateway's shared manifest reads (bytes kept by digest here, one HEAD to the manifest service per batch of
 * concurrent reads, which counts that many pulls); a blob GET of the whole blob on the filesystem driver asks the
 * blob service whether the repository has it (a HEAD) and streams the file from here. Everything else (pushes,
 * deletes, tag lists, the admin and console APIs) is proxied to the main thread as the gateway proxies to a service.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { keysFromJwks } from '@lading/access';
import { type LadingConfig, durationMs } from '@lading/config';
import { LruCache } from '@lading/cache';
import { PRINCIPAL_HEADER, PULLS_HEADER, type RawHandler, localsOf, writeHead } from '@lading/http';
import { looksLikeDigest, parseDigest } from '@lading/oci';
import { createHttpServer, ladingVersion } from '@lading/runtime';
import { BlobNotFoundError, type BlobStore, blobKey, createFilesystemBlobStore } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
import { readEpoch } from './write-epoch';
import { type UpstreamProxy, authorizationFromConfig, consoleSiteFromConfig, createGateway, createManifestReads, createSessionTokens, createUpstreamProxy, exchangeOverHttp } from '@lading/gateway';

/** Marks the `workerData` of a read worker (main.ts tells a read worker's start from the process's own by it). */
export const READ_WORKER_MARK = 'ladingReadWorker';

/** The header that proves a request to the main thread's blob and manifest services comes from a read worker. */
export const WORKER_KEY_HEADER = 'x-lading-read-worker';

/** What the main thread hands a read worker. */
export interface ReadWorkerData {
  [READ_WORKER_MARK]: true;
  /** The process's configuration (`upstreams.secret` set: the proof of principals to the services). */
  config: LadingConfig;
  /** The worker's number, for its log lines. */
  index: number;
  /** Where to listen: the process's host and the port its server got. */
  host: string;
  port: number;
  /** The main thread's services on loopback, as base URLs. */
  upstreams: { blob: string; manifest: string; auth: string };
  /** The random key of `WORKER_KEY_HEADER`. */
  key: string;
  /** The write epoch (write-epoch.ts) the worker's cached answers are checked against. */
  epoch: SharedArrayBuffer;
}

/** Messages between the main thread and a read worker. */
export type ReadWorkerMessage =
  | { type: 'listening' }
  | { type: 'failed'; message: string }
  | { type: 'served'; id: number; count: number }
  | { type: 'count'; id: number }
  | { type: 'close' }
  | { type: 'closed' }
  /** Pulls the worker answered from its cache, per principal and repository, for the audit trail. */
  | { type: 'pulls'; counts: Array<[principal: string, repository: string, count: number]> }
  | { type: 'flush'; id: number }
  | { type: 'flushed'; id: number }
  | { type: 'proxied'; id: number; repository: string }
  | { type: 'proxiedAnswer'; id: number; proxied: boolean };

/** How often a worker hands the pulls it answered from its cache to the main thread's audit trail. */
const PULL_POST_MS = 200;

/** Headers of the blob service's HEAD answer that the worker's GET answer carries as they are. */
const BLOB_HEADERS = ['docker-content-digest', 'etag', 'accept-ranges', 'cache-control', 'content-type', 'content-length'];

/**
 * Blob reads from the worker: a GET of the whole blob (no Range, no If-None-Match) asks the blob service for the
 * blob's answer without its body (HEAD: the repository has it, its size), then streams the bytes from the filesystem
 * store here; every other blob request is proxied.
 */
function blobReads(upstream: UpstreamProxy, store: BlobStore | null, caching: Caching, maxBytes: number): RawHandler {
  const kept = new LruCache<string, Kept>({ maxBytes });
  return (req, res, next) => {
    const match = localsOf(res).route;
    if (!store || req.method !== 'GET' || !match || match.route.name !== 'blob' || req.headers.range !== undefined || req.headers['if-none-match'] !== undefined) {
      upstream.handler(req, res, next);
      return;
    }
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    void streamBlob(upstream, store, kept, caching, req, res, next, url, match.repository, match.param).catch((err: unknown) => (res.headersSent ? res.destroy() : next(err)));
  };
}

async function streamBlob(
  upstream: UpstreamProxy,
  store: BlobStore,
  kept: LruCache<string, Kept>,
  caching: Caching,
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
  url: string,
  repository: string,
  reference: string,
): Promise<void> {
  const key = `${repository}@${reference}`;
  let answered = kept.get(key);
  if (!answered || answered.epoch !== caching.epoch()) {
    const epoch = caching.epoch();
    const head = await upstream.exchange(req, 'HEAD', url);
    if (head.statusCode !== 200 || !Number.isSafeInteger(Number(head.headers['content-length']))) {
      // The service's own answer (BLOB_UNKNOWN with its body, a redirect, a pull-through fetch).
      upstream.handler(req, res, next);
      return;
    }
    answered = { epoch, headers: head.headers, body: null };
    if (await caching.keepable(repository)) kept.set(key, answered, key.length + 400);
  }
  const size = Number(answered.headers['content-length']);
  const digest = parseDigest(reference).value;
  let body;
  try {
    body = await store.read(blobKey(digest), size > 0 ? { start: 0, end: size - 1 } : undefined);
  } catch (err) {
    // Deleted since the HEAD: the service answers it as it answers any unknown blob.
    if (err instanceof BlobNotFoundError) {
      kept.delete(key);
      return upstream.handler(req, res, next);
    }
    throw err;
  }
  const headers: Record<string, string> = {};
  for (const name of BLOB_HEADERS) {
    const value = answered.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  writeHead(res, 200, headers);
  const copyTo = (body as { copyTo?: (res: ServerResponse) => Promise<void> }).copyTo;
  if (typeof copyTo === 'function') {
    await copyTo.call(body, res);
    return;
  }
  res.on('close', () => body.destroy());
  body.once('error', () => res.destroy());
  body.pipe(res);
}

/** An answer of the main thread's services kept by a worker, with the write epoch read before it was asked for. */
interface Kept {
  epoch: number;
  headers: Record<string, string | string[]>;
  body: Buffer | null;
}

/** Upstream headers a kept answer does not repeat (per request, or per connection). */
const NOT_KEPT = new Set(['x-request-id', 'docker-distribution-api-version', 'date', 'connection', 'keep-alive', 'transfer-encoding']);

function keptHeaders(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const name in headers) if (!NOT_KEPT.has(name)) kept[name] = headers[name];
  return kept;
}

/** What the worker's caches need from the rest of the worker. */
interface Caching {
  /** The write epoch now. */
  epoch(): number;
  /** Whether answers about a repository may be kept: not when its pulls are noted (proxied, retained by pulls). */
  keepable(repository: string): Promise<boolean>;
  /** Counts a pull answered from the cache, for the audit trail. */
  countPull(principal: string, repository: string): void;
}

const sha256Of = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/**
 * Manifest GET/HEAD by digest from the worker's cache: an answer of the manifest service (a GET, verified against its
 * digest) is kept per repository, digest and Accept header while the write epoch stays what it was before it was
 * read, and counted as a pull each time it is served. Everything else, and a read of a repository whose pulls are
 * noted, goes to `inner` (the gateway's shared manifest reads).
 */
function cachedManifestReads(inner: RawHandler, upstream: UpstreamProxy, caching: Caching, maxBytes: number): RawHandler {
  const kept = new LruCache<string, Kept>({ maxBytes });
  const serve = (req: IncomingMessage, res: ServerResponse, answer: Kept, repository: string) => {
    const principal = req.headers[PRINCIPAL_HEADER];
    caching.countPull(typeof principal === 'string' ? principal : '', repository);
    writeHead(res, 200, answer.headers);
    if (req.method === 'HEAD' || !answer.body) res.end();
    else res.end(answer.body);
  };
  return (req, res, next) => {
    const match = localsOf(res).route;
    const method = req.method;
    if (maxBytes === 0 || !match || match.route.name !== 'manifest' || (method !== 'GET' && method !== 'HEAD') || !looksLikeDigest(match.param) || req.headers['if-none-match'] !== undefined) {
      inner(req, res, next);
      return;
    }
    const key = `${match.repository}@${match.param}\n${header(req.headers.accept)}`;
    const hit = kept.get(key);
    if (hit && hit.epoch === caching.epoch()) {
      serve(req, res, hit, match.repository);
      return;
    }
    const epoch = caching.epoch();
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    void (async () => {
      if (!(await caching.keepable(match.repository))) return inner(req, res, next);
      // Counted as no pull: the client's pull is counted here when it is served.
      const answered = await upstream.exchange(req, 'GET', url, { [PULLS_HEADER]: '0' });
      if (answered.statusCode !== 200 || header(answered.headers['docker-content-digest']) !== match.param || sha256Of(answered.body) !== match.param) {
        // The service's own answer (MANIFEST_UNKNOWN with its body, ...), counted there if it is a pull.
        return inner(req, res, next);
      }
      const answer: Kept = { epoch, headers: { ...keptHeaders(answered.headers), 'content-length': String(answered.body.length) }, body: answered.body };
      kept.set(key, answer, key.length + answered.body.length + 400);
      serve(req, res, answer, match.repository);
    })().catch((err: unknown) => (res.headersSent ? res.destroy() : next(err)));
  };
}

function header(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}

/** Starts the read worker: builds its gateway, listens on the shared port, and answers the main thread's messages. */
export async function runReadWorker(data: ReadWorkerData): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('runReadWorker runs in a worker thread');
  const { config, upstreams, key } = data;
  const logger = createLogger({ service: 'registry', level: config.log.level }).child({ readWorker: data.index });
  const headersTimeoutMs = durationMs(config.upstreams.timeout);
  const principalSecret = config.upstreams.secret;
  const blob = createUpstreamProxy({ service: 'blob', urls: [upstreams.blob], headersTimeoutMs, logger, principalSecret });
  const manifest = createUpstreamProxy({ service: 'manifest', urls: [upstreams.manifest], headersTimeoutMs, logger, principalSecret });
  const auth = createUpstreamProxy({ service: 'auth', urls: [upstreams.auth], headersTimeoutMs, logger });
  const authorize = authorizationFromConfig(config, async () => {
    const res = await fetch(`${upstreams.auth}/.well-known/jwks.json`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`JWKS answered ${res.status}`);
    return keysFromJwks((await res.json()) as { keys: unknown[] });
  });
  const store = config.storage.driver === 's3' ? null : await createFilesystemBlobStore(config.storage.root ?? path.join(path.resolve(config.data.dir), 'blobs'));
  const epoch = readEpoch(data.epoch);
  // Namespaces whose gc policy retains by pulls note every pull on the main thread: their reads are never kept here.
  const retainedByPulls = config.gc.policies.filter((p) => p.notPulledFor !== undefined).map((p) => p.namespace.replace(/\/+$/, ''));
  const noted = (repository: string) => retainedByPulls.some((ns) => ns === '' || repository === ns || repository.startsWith(`${ns}/`));
  let nextCall = 0;
  const calls = new Map<number, (message: ReadWorkerMessage) => void>();
  const call = (message: (id: number) => ReadWorkerMessage) =>
    new Promise<ReadWorkerMessage>((resolve) => {
      const id = nextCall++;
      calls.set(id, resolve);
      port.postMessage(message(id));
    });
  /** Whether the main thread's pull-through covers a repository, per write epoch (rules change through writes). */
  const proxied = new Map<string, boolean>();
  let proxiedEpoch = -1;
  const pulls = new Map<string, number>();
  const postPulls = () => {
    if (pulls.size === 0) return;
    const counts: Array<[string, string, number]> = [];
    for (const [key, count] of pulls) {
      const split = key.indexOf('\n');
      counts.push([key.slice(0, split), key.slice(split + 1), count]);
    }
    pulls.clear();
    port.postMessage({ type: 'pulls', counts } satisfies ReadWorkerMessage);
  };
  const pullTimer = setInterval(postPulls, PULL_POST_MS);
  pullTimer.unref();
  const caching: Caching = {
    epoch,
    async keepable(repository) {
      if (noted(repository)) return false;
      if (proxiedEpoch !== epoch()) {
        proxied.clear();
        proxiedEpoch = epoch();
      }
      let covered = proxied.get(repository);
      if (covered === undefined) {
        const answer = await call((id) => ({ type: 'proxied', id, repository }));
        covered = answer.type === 'proxiedAnswer' && answer.proxied;
        if (proxied.size > 10_000) proxied.clear();
        proxied.set(repository, covered);
      }
      return !covered;
    },
    countPull(principal, repository) {
      const key = `${principal}\n${repository}`;
      pulls.set(key, (pulls.get(key) ?? 0) + 1);
    },
  };
  /** The services trust only requests that carry the key; the gateway set the principal it verified. */
  const keyed = (handler: RawHandler): RawHandler => (req, res, next) => {
    req.headers[WORKER_KEY_HEADER] = key;
    handler(req, res, next);
  };
  const gateway = createGateway({
    authorize,
    dispatch: {
      blob: keyed(blobReads(blob, store, caching, config.limits.blobCacheBytes)),
      manifest: keyed(cachedManifestReads(createManifestReads({ upstream: manifest, maxBytes: config.limits.manifestCacheBytes }), manifest, caching, config.limits.manifestCacheBytes)),
      auth: auth.handler,
    },
    logger,
    accessLog: config.log.access,
    trustedProxies: config.http.trustedProxies,
    version: ladingVersion(),
    console: consoleSiteFromConfig(config),
    sessions: createSessionTokens(exchangeOverHttp([upstreams.auth], config.auth.service, headersTimeoutMs)),
  });
  let served = 0;
  const server = createHttpServer(gateway, config.limits);
  server.on('request', () => served++);
  port.on('message', (message: ReadWorkerMessage) => {
    if (message.type === 'count') port.postMessage({ type: 'served', id: message.id, count: served } satisfies ReadWorkerMessage);
    else if (message.type === 'proxiedAnswer') {
      calls.get(message.id)?.(message);
      calls.delete(message.id);
    } else if (message.type === 'flush') {
      postPulls();
      port.postMessage({ type: 'flushed', id: message.id } satisfies ReadWorkerMessage);
    } else if (message.type === 'close') {
      const done = () => {
        clearInterval(pullTimer);
        postPulls();
        void Promise.all([blob.close(), manifest.close(), auth.close()]).finally(() => {
          port.postMessage({ type: 'closed' } satisfies ReadWorkerMessage);
          port.close();
        });
      };
      server.close(done);
      server.closeIdleConnections();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: data.host, port: data.port, reusePort: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port.postMessage({ type: 'listening' } satisfies ReadWorkerMessage);
}
