/**
 * The blob service: upload sessions (monolithic, streamed, chunked, resumable), cross-repository mounts, and blob
 * GET/HEAD/DELETE. Digests are computed while bytes stream in; session state lives in the database and storage.
 * The handlers parse, call and render; the writes are domain operations in blob-writes.ts and upload-lifecycle.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { durationMs } from '@lading/config';
import type { EventBus } from '@lading/events';
import { HttpApp, PRINCIPAL_HEADER, createServiceApp, dispatchRoutes, finishServiceApp, locationFor, requestContext, withFastReads } from '@lading/http';
import { type QuotaCoverage, pingDatabase } from '@lading/metadata';
import { OciError, RouteMatch, assertRepositoryName, errors, parseDigest } from '@lading/oci';
import type { BlobStore } from '@lading/storage';
import type { ServiceDeps } from '@lading/runtime';
import { type ProxyNamespaces, refuseProxyWrite } from '@lading/upstream';
import { createBlobReader } from './blob-reader';
import type { BlobPullThrough } from './blob-pull-through';
import { mountBlob, removeBlob, storeBlob } from './blob-writes';
import { UploadChunk, UploadDeps, UploadRef, appendToUpload, discardUpload, findOwnUpload, finishUpload, openUpload } from './upload-lifecycle';

/** What the blob service is built from. */
export interface BlobServiceDeps extends ServiceDeps {
  store: BlobStore;
  /** Which namespaces have a quota (kept current by the process): commits no quota covers skip the check. */
  quotas?: QuotaCoverage;
  /** How long a writer holds an upload session before another may take it over. */
  uploadLeaseMs?: number;
  /** Where blob deletes made by others (the garbage collector) are heard, to drop cached descriptors; the bus. */
  invalidations?: Pick<EventBus, 'subscribe'>;
  /** Pull-through caching: blob misses in proxied repositories are fetched from their upstream; none without it. */
  pullThrough?: BlobPullThrough;
  /** The proxy namespaces in force, whose writes are refused (the live rules); `config.proxies` when omitted. */
  proxies?: ProxyNamespaces;
}

/** The caller as the gateway verified it ('' when auth is off); set only by the gateway. */
function principalOf(req: Request): string {
  const value = req.headers[PRINCIPAL_HEADER];
  return typeof value === 'string' ? value : '';
}

function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  throw new OciError('BLOB_UPLOAD_INVALID', `query parameter ${name} given more than once`);
}

function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

/** The upload session a request names, for its caller. */
function uploadRef(req: Request, match: RouteMatch): UploadRef {
  return { repository: match.repository, id: match.param, principal: principalOf(req) };
}

/** The request body as a chunk of an upload, with what its headers declare about it. */
function chunkOf(req: Request): UploadChunk {
  const contentLength = req.headers['content-length'];
  return { body: req, contentRange: req.headers['content-range'], contentLength: contentLength !== undefined ? Number(contentLength) : undefined };
}

/** The blob service's app, with a way to drop what its caches hold of a repository. */
export interface BlobServiceApp extends HttpApp {
  /** Forgets the cached blob descriptors of a repository: called before a repository deletion is answered. */
  forgetRepository(repository: string): void;
}

/** Creates the blob service's app: express, with the pull fast path (blob GET/HEAD) in front. */
export function createBlobService(deps: BlobServiceDeps): BlobServiceApp {
  const { db, store, config, events } = deps;
  const base = config.http.host;
  const writes: UploadDeps = { db, store, events, reviewDelayMs: durationMs(config.gc.reviewDelay), leaseMs: deps.uploadLeaseMs ?? 60_000, quotas: deps.quotas };
  const reader = createBlobReader({ db, store, config, logger: deps.logger, metrics: deps.metrics });
  deps.invalidations
    ?.subscribe((event) => reader.onEvent(event))
    .catch((err: unknown) => deps.logger.error({ err }, 'the blob descriptor cache cannot hear invalidations'));

  const uploadLocation = (repository: string, id: string) => locationFor(base, `/v2/${repository}/blobs/uploads/${id}`);
  const blobLocation = (repository: string, digest: string) => locationFor(base, `/v2/${repository}/blobs/${digest}`);

  function sendUploadStatus(res: Response, status: number, repository: string, id: string, offset: number): void {
    res.status(status);
    res.setHeader('Location', uploadLocation(repository, id));
    res.setHeader('Range', `0-${Math.max(offset - 1, 0)}`);
    res.setHeader('Docker-Upload-UUID', id);
    res.setHeader('Content-Length', '0');
    res.end();
  }

  function sendBlobCreated(res: Response, repository: string, digest: string): void {
    res.status(201);
    res.setHeader('Location', blobLocation(repository, digest));
    res.setHeader('Docker-Content-Digest', digest);
    res.setHeader('Content-Length', '0');
    res.end();
  }

  async function startUpload(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const repository = match.repository;
    refuseProxyWrite(deps.proxies ?? config.proxies, repository);
    const mount = single(req.query.mount, 'mount');
    const from = single(req.query.from, 'from');
    const digestParam = single(req.query.digest, 'digest');
    if (mount !== undefined) {
      const digest = parseDigest(mount).value;
      if (from !== undefined) assertRepositoryName(from);
      if (await mountBlob(writes, { repository, digest, from: from ?? null, context: requestContext(req, config) })) {
        deps.onEventsCommitted?.();
        req.resume();
        sendBlobCreated(res, repository, digest);
        return;
      }
    }
    if (digestParam !== undefined && mount === undefined) {
      const digest = parseDigest(digestParam);
      await storeBlob(writes, { repository, digest, body: req, context: requestContext(req, config) });
      deps.onEventsCommitted?.();
      sendBlobCreated(res, repository, digest.value);
      return;
    }
    req.resume();
    const { id, repositoryCreated } = await openUpload(writes, { repository, principal: principalOf(req), context: () => requestContext(req, config) });
    if (repositoryCreated) deps.onEventsCommitted?.();
    deps.metrics?.uploadsStarted.add(1);
    sendUploadStatus(res, 202, repository, id, 0);
  }

  async function patchUpload(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const { id, offset } = await appendToUpload(writes, uploadRef(req, match), chunkOf(req));
    sendUploadStatus(res, 202, match.repository, id, offset);
  }

  async function completeUpload(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const digestParam = single(req.query.digest, 'digest');
    if (digestParam === undefined) throw errors.digestInvalid('the digest query parameter is required');
    const digest = parseDigest(digestParam);
    const chunk = hasBody(req) ? chunkOf(req) : (req.resume(), null);
    await finishUpload(writes, { ref: uploadRef(req, match), digest, chunk, context: requestContext(req, config) });
    deps.metrics?.uploadsEnded.add(1, { result: 'completed' });
    deps.onEventsCommitted?.();
    sendBlobCreated(res, match.repository, digest.value);
  }

  async function uploadStatus(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const upload = await findOwnUpload(db, uploadRef(req, match));
    sendUploadStatus(res, 204, match.repository, upload.id, upload.offset);
  }

  async function cancelUpload(req: Request, res: Response, match: RouteMatch): Promise<void> {
    await discardUpload(writes, uploadRef(req, match));
    deps.metrics?.uploadsEnded.add(1, { result: 'cancelled' });
    res.status(204).setHeader('Content-Length', '0');
    res.end();
  }

  async function deleteBlob(req: Request, res: Response, match: RouteMatch): Promise<void> {
    if (!config.registry.deleteEnabled) throw errors.unsupported('deletes are disabled on this registry');
    const digest = parseDigest(match.param).value;
    await removeBlob(writes, { repository: match.repository, digest, context: requestContext(req, config) });
    // Invariant: the descriptor cache forgets an unlinked blob before the delete is answered.
    reader.forget(match.repository, digest);
    deps.onEventsCommitted?.();
    res.status(202).setHeader('Content-Length', '0');
    res.end();
  }

  /**
   * Blob GET/HEAD: the reader answers; in a proxied repository a miss is fetched from the upstream first. A whole
   * GET streams from the upstream while the blob is stored; HEAD and Range fetch it whole, then the reader answers.
   */
  async function serveBlob(req: IncomingMessage, res: ServerResponse, match: RouteMatch): Promise<void> {
    const pullThrough = deps.pullThrough;
    const source = pullThrough?.match(match.repository);
    if (!pullThrough || !source) return reader.serve(req, res, match);
    try {
      await reader.serve(req, res, match);
      deps.metrics?.proxyRequests.add(1, { namespace: source.namespace, kind: 'blob', result: 'hit' });
      return;
    } catch (err) {
      if (!(err instanceof OciError && err.code === 'BLOB_UNKNOWN') || res.headersSent) throw err;
    }
    const digest = parseDigest(match.param);
    const whole = req.method === 'GET' && req.headers.range === undefined && req.headers['if-none-match'] === undefined;
    const context = requestContext(req as Request, config);
    const pulled = await pullThrough.pull(source, { repository: match.repository, digest, context, client: whole ? { req, res } : undefined });
    if (!whole || pulled.waited) await reader.serve(req, res, match);
  }

  const app = createServiceApp(async () => {
    await pingDatabase(db);
    await store.ping();
  });
  app.use(
    dispatchRoutes<'blob'>({
      'uploadStart POST': startUpload,
      'upload PATCH': patchUpload,
      'upload PUT': completeUpload,
      'upload GET': uploadStatus,
      'upload DELETE': cancelUpload,
      'blob GET': (req, res, match) => serveBlob(req, res, match),
      'blob DELETE': deleteBlob,
    }),
  );
  return Object.assign(withFastReads(finishServiceApp(app, deps.logger), ['blob'], serveBlob, deps.logger), { forgetRepository: reader.forgetRepository });
}
