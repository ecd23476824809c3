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
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { keysFromJwks } from '@lading/access';
import { type LadingConfig, durationMs } from '@lading/config';
import { type RawHandler, localsOf, writeHead } from '@lading/http';
import { parseDigest } from '@lading/oci';
import { createHttpServer, ladingVersion } from '@lading/runtime';
import { BlobNotFoundError, type BlobStore, blobKey, createFilesystemBlobStore } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
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
}

/** Messages between the main thread and a read worker. */
export type ReadWorkerMessage =
  | { type: 'listening' }
  | { type: 'failed'; message: string }
  | { type: 'served'; id: number; count: number }
  | { type: 'count'; id: number }
  | { type: 'close' }
  | { type: 'closed' };

/** Headers of the blob service's HEAD answer that the worker's GET answer carries as they are. */
const BLOB_HEADERS = ['docker-content-digest', 'etag', 'accept-ranges', 'cache-control', 'content-type', 'content-length'];

/**
 * Blob reads from the worker: a GET of the whole blob (no Range, no If-None-Match) asks the blob service for the
 * blob's answer without its body (HEAD: the repository has it, its size), then streams the bytes from the filesystem
 * store here; every other blob request is proxied.
 */
function blobReads(upstream: UpstreamProxy, store: BlobStore | null): RawHandler {
  return (req, res, next) => {
    const match = localsOf(res).route;
    if (!store || req.method !== 'GET' || !match || match.route.name !== 'blob' || req.headers.range !== undefined || req.headers['if-none-match'] !== undefined) {
      upstream.handler(req, res, next);
      return;
    }
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    void streamBlob(upstream, store, req, res, next, url, match.param).catch((err: unknown) => (res.headersSent ? res.destroy() : next(err)));
  };
}

async function streamBlob(upstream: UpstreamProxy, store: BlobStore, req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void, url: string, reference: string): Promise<void> {
  const answered = await upstream.exchange(req, 'HEAD', url);
  const size = Number(answered.headers['content-length']);
  if (answered.statusCode !== 200 || !Number.isSafeInteger(size)) {
    // The service's own answer (BLOB_UNKNOWN with its body, a redirect, a pull-through fetch).
    upstream.handler(req, res, next);
    return;
  }
  const digest = parseDigest(reference).value;
  let body;
  try {
    body = await store.read(blobKey(digest), size > 0 ? { start: 0, end: size - 1 } : undefined);
  } catch (err) {
    // Deleted between the HEAD and the read: the service answers it as it answers any unknown blob.
    if (err instanceof BlobNotFoundError) return upstream.handler(req, res, next);
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
  /** The services trust only requests that carry the key; the gateway set the principal it verified. */
  const keyed = (handler: RawHandler): RawHandler => (req, res, next) => {
    req.headers[WORKER_KEY_HEADER] = key;
    handler(req, res, next);
  };
  const gateway = createGateway({
    authorize,
    dispatch: {
      blob: keyed(blobReads(blob, store)),
      manifest: keyed(createManifestReads({ upstream: manifest, maxBytes: config.limits.manifestCacheBytes })),
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
    else if (message.type === 'close') {
      const done = () => {
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
