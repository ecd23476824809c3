/**
 * The blob service: upload sessions (monolithic, streamed, chunked, resumable), cross-repository mounts, and blob
 * GET/HEAD/DELETE. Digests are computed while bytes stream in; session state lives in the database and storage.
 */
import { randomUUID } from 'node:crypto';
import { type Readable, finished } from 'node:stream';
import type { Request, Response } from 'express';
import { durationMs } from '@lading/config';
import { EVENT_TYPES, EventBus, appendEvent } from '@lading/events';
import { HttpApp, PRINCIPAL_HEADER, createServiceApp, dispatchRoutes, finishServiceApp, locationFor, requestContext, withFastReads } from '@lading/http';
import * as meta from '@lading/metadata';
import { DIGEST_ALGORITHMS, DigestAlgorithm, OciError, RouteMatch, assertRepositoryName, errors, parseDigest } from '@lading/oci';
import { BlobStore, InvalidOffsetError, blobKey } from '@lading/storage';
import { SPAN_NAMES, withSpan } from '@lading/telemetry';
import type { ServiceDeps } from '@lading/runtime';
import { createBlobReader } from './blob-reader';
import { parseContentRange } from './byte-range';
import { DigestingStream, MultiDigester, createNativeDigester } from './digester';

/** What the blob service is built from. */
export interface BlobServiceDeps extends ServiceDeps {
  store: BlobStore;
  /** How long a writer holds an upload session before another may take it over. */
  uploadLeaseMs?: number;
  /** Where blob deletes made by others (the garbage collector) are heard, to drop cached descriptors; the bus. */
  invalidations?: Pick<EventBus, 'subscribe'>;
}

const ALL_ALGORITHMS = Object.keys(DIGEST_ALGORITHMS) as DigestAlgorithm[];
/** The caller as the gateway verified it ('' when auth is off); set only by the gateway. */
function principalOf(req: Request): string {
  const value = req.headers[PRINCIPAL_HEADER];
  return typeof value === 'string' ? value : '';
}

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

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

/**
 * The request body piped through `sink`. A client that goes away mid-body fails the sink (`pipe` alone would leave
 * it waiting forever for the rest, and the upload's lease renewed for good).
 */
function bodyThrough(req: Request, sink: DigestingStream): Readable {
  // Whoever reads the sink sees the failure (reads of a destroyed stream fail); this listener only keeps a failure
  // that comes while nobody is reading from being thrown as an unhandled 'error' event.
  sink.on('error', () => undefined);
  finished(req, (err) => {
    if (err) sink.destroy(err);
  });
  return req.pipe(sink);
}

/**
 * Finishes hashing an upload's bytes (streamed through the digester while they were written) in a `digest.compute`
 * span, so a trace shows the verification of what the client claimed.
 */
function digestSpan<T>(algorithm: string, bytes: number, digest: () => T): Promise<T> {
  return withSpan(SPAN_NAMES.digestCompute, { 'lading.digest.algorithm': algorithm, 'lading.digest.bytes': bytes }, digest);
}

/** Creates the blob service's app: express, with the pull fast path (blob GET/HEAD) in front. */
export function createBlobService(deps: BlobServiceDeps): HttpApp {
  const { db, store, config, events } = deps;
  const leaseMs = deps.uploadLeaseMs ?? 60_000;
  const base = config.http.host;
  const reviewDelayMs = durationMs(config.gc.reviewDelay);
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

  /**
   * Commits an upload's bytes as the blob's object, pinning the digest first: the garbage collector then cannot
   * delete an object that this commit found already stored before recordBlob records it (gc-tombstones.ts).
   * Resolves with the pin, which recordBlob drops.
   */
  async function commitObject(uploadId: string, digest: string, size: number): Promise<string> {
    const pin = await meta.pinBlobObject(db, digest);
    try {
      await store.commitUpload(uploadId, blobKey(digest), size);
    } catch (err) {
      await meta.unpinBlobObject(db, pin).catch(() => undefined);
      throw err;
    }
    return pin;
  }

  /** Records a stored blob (dropping its pin) and links it into the repository, with its event, in one transaction. */
  async function recordBlob(req: Request, repository: string, digest: string, size: number, uploadId: string | null, pin: string): Promise<void> {
    const ctx = requestContext(req, config);
    await db.transaction(async (tx) => {
      const repo = await meta.ensureRepository(tx, repository);
      if (repo.created) await appendEvent(tx, events, { type: EVENT_TYPES.repositoryCreated, repository, subject: repository, context: ctx });
      await meta.recordBlobObject(tx, digest, size, pin);
      await meta.linkBlob(tx, repo.id, digest);
      if (uploadId) await meta.deleteUpload(tx, uploadId);
      await appendEvent(tx, events, {
        type: EVENT_TYPES.blobUploaded,
        repository,
        subject: `${repository}@${digest}`,
        context: ctx,
        data: { digest, size, mediaType: 'application/octet-stream' },
      });
      // A blob that no manifest references yet is reviewed later; a manifest push in between keeps it.
      await meta.queueBlobReview(tx, [digest], 'upload completed', reviewDelayMs);
    }).catch(async (err) => {
      await meta.unpinBlobObject(db, pin).catch(() => undefined);
      throw err;
    });
    if (uploadId) deps.metrics?.uploadsEnded.add(1, { result: 'completed' });
    deps.onEventsCommitted?.();
  }

  /**
   * A whole blob in one request (POST ?digest= or PUT on a fresh session): native hashing into a scratch upload,
   * then `beforeCommit` (once the digest is known to match), then commit.
   */
  async function storeWholeBody(req: Request, uploadId: string, expected: string, beforeCommit?: () => Promise<void>): Promise<{ size: number; pin: string }> {
    const digest = parseDigest(expected);
    const digester = createNativeDigester(digest.algorithm);
    const counter = new DigestingStream(digester);
    const written = await store.writeUpload(uploadId, 0, bodyThrough(req, counter));
    const actual = await digestSpan(digest.algorithm, written, () => digester.digest());
    if (actual !== digest.value) {
      await store.deleteUpload(uploadId);
      throw errors.digestInvalid(undefined, { expected: digest.value, actual });
    }
    await beforeCommit?.();
    return { size: written, pin: await commitObject(uploadId, digest.value, written) };
  }

  async function startUpload(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const repository = match.repository;
    const mount = single(req.query.mount, 'mount');
    const from = single(req.query.from, 'from');
    const digestParam = single(req.query.digest, 'digest');
    if (mount !== undefined) {
      const digest = parseDigest(mount).value;
      if (from !== undefined) assertRepositoryName(from);
      if (await tryMount(req, repository, digest, from ?? null)) {
        req.resume();
        sendBlobCreated(res, repository, digest);
        return;
      }
    }
    if (digestParam !== undefined && mount === undefined) {
      parseDigest(digestParam);
      const id = randomUUID();
      try {
        const { size, pin } = await storeWholeBody(req, id, digestParam);
        await recordBlob(req, repository, digestParam, size, null, pin);
      } catch (err) {
        // Committed, the scratch upload became the object; only a failed one leaves bytes behind.
        await store.deleteUpload(id).catch(() => undefined);
        throw err;
      }
      sendBlobCreated(res, repository, digestParam);
      return;
    }
    req.resume();
    const id = randomUUID();
    const algorithms = ALL_ALGORITHMS.join('+');
    // In a repository that exists (nearly always) the session is one statement; a new repository gets its event.
    if (!(await meta.createUploadInRepository(db, id, repository, algorithms, principalOf(req)))) {
      const ctx = requestContext(req, config);
      await db.transaction(async (tx) => {
        const repo = await meta.ensureRepository(tx, repository);
        if (repo.created) await appendEvent(tx, events, { type: EVENT_TYPES.repositoryCreated, repository, subject: repository, context: ctx });
        await meta.createUpload(tx, id, repo.id, algorithms, principalOf(req));
      });
      deps.onEventsCommitted?.();
    }
    deps.metrics?.uploadsStarted.add(1);
    sendUploadStatus(res, 202, repository, id, 0);
  }

  /** Links an existing blob from another repository (or, without `from`, from wherever it is); false if it cannot. */
  async function tryMount(req: Request, repository: string, digest: string, from: string | null): Promise<boolean> {
    if (from === repository) return (await meta.findRepositoryBlob(db, repository, digest)) !== null;
    const source = from === null ? await db.query(`SELECT 1 FROM repository_blobs WHERE blob_digest = $1 LIMIT 1`, [digest]) : null;
    if (from !== null ? !(await meta.findRepositoryBlob(db, from, digest)) : source!.rows.length === 0) return false;
    const ctx = requestContext(req, config);
    const mounted = await db.transaction(async (tx) => {
      const blob = await meta.lockBlob(tx, digest);
      if (!blob) return false;
      const repo = await meta.ensureRepository(tx, repository);
      if (repo.created) await appendEvent(tx, events, { type: EVENT_TYPES.repositoryCreated, repository, subject: repository, context: ctx });
      if (await meta.linkBlob(tx, repo.id, digest)) {
        await appendEvent(tx, events, {
          type: EVENT_TYPES.blobMounted,
          repository,
          subject: `${repository}@${digest}`,
          context: ctx,
          data: { digest, size: blob.size, mediaType: 'application/octet-stream', fromRepository: from },
        });
      }
      return true;
    });
    deps.onEventsCommitted?.();
    return mounted;
  }

  async function loadUpload(req: Request, match: RouteMatch): Promise<meta.UploadRow> {
    if (!UPLOAD_ID.test(match.param)) throw errors.uploadUnknown(match.param.slice(0, 64));
    const upload = await meta.findUpload(db, match.repository, match.param);
    // Another principal's session is answered exactly like one that does not exist.
    if (!upload || upload.principal !== principalOf(req)) throw errors.uploadUnknown(match.param);
    return upload;
  }

  /** Appends the request body to a session at its current offset; returns the session's new offset. */
  async function appendChunk(req: Request, upload: meta.UploadRow): Promise<number> {
    const range = parseContentRange(req.headers['content-range'] as string | undefined);
    if (range === 'invalid') throw errors.rangeInvalid('invalid Content-Range', upload.offset);
    if (range && range.start !== upload.offset) throw errors.rangeInvalid(`chunk starts at ${range.start}, upload is at ${upload.offset}`, upload.offset);
    const declared = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined;
    if (range && declared !== undefined && declared !== range.end - range.start + 1) {
      throw errors.rangeInvalid('Content-Range does not match Content-Length', upload.offset);
    }
    const claimed = await meta.claimUpload(db, upload.id, upload.offset, leaseMs);
    if (!claimed) throw errors.rangeInvalid('another chunk of this upload is being written', upload.offset);
    const renew = setInterval(() => void meta.claimUpload(db, upload.id, upload.offset, leaseMs).catch(() => undefined), leaseMs / 3);
    renew.unref();
    try {
      const digester = await MultiDigester.resume(ALL_ALGORITHMS, upload.hashState);
      const counter = new DigestingStream(digester);
      let written: number;
      try {
        written = await store.writeUpload(upload.id, upload.offset, bodyThrough(req, counter));
      } catch (err) {
        if (err instanceof InvalidOffsetError) throw errors.rangeInvalid('upload data is behind its recorded offset', err.stored);
        throw err;
      }
      if (range && written !== range.end - range.start + 1) {
        throw errors.rangeInvalid('chunk length does not match Content-Range', upload.offset);
      }
      clearInterval(renew);
      await meta.advanceUpload(db, upload.id, upload.offset + written, digester.save());
      return upload.offset + written;
    } catch (err) {
      clearInterval(renew);
      await meta.releaseUpload(db, upload.id).catch(() => undefined);
      throw err;
    }
  }

  async function patchUpload(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const upload = await loadUpload(req, match);
    const offset = await appendChunk(req, upload);
    sendUploadStatus(res, 202, match.repository, upload.id, offset);
  }

  async function completeUpload(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const digestParam = single(req.query.digest, 'digest');
    if (digestParam === undefined) throw errors.digestInvalid('the digest query parameter is required');
    const digest = parseDigest(digestParam);
    const upload = await loadUpload(req, match);
    let committed: { size: number; pin: string };
    let leased = false;
    if (upload.offset === 0 && upload.hashState === null && hasBody(req) && req.headers['content-range'] === undefined) {
      // The whole blob in the PUT: hash natively into a scratch upload and take the session only once the digest
      // matches, so that a wrong digest leaves the session exactly as it was.
      const scratch = randomUUID();
      let claimed = false;
      try {
        committed = await storeWholeBody(req, scratch, digest.value, async () => {
          claimed = (await meta.claimUpload(db, upload.id, 0, leaseMs)) !== null;
          if (!claimed) throw errors.rangeInvalid('another chunk of this upload is being written', 0);
        });
      } catch (err) {
        if (claimed) await meta.releaseUpload(db, upload.id).catch(() => undefined);
        await store.deleteUpload(scratch).catch(() => undefined);
        throw err;
      }
    } else {
      const appended = hasBody(req);
      const offset = appended ? await appendChunk(req, upload) : (req.resume(), upload.offset);
      const state = appended ? (await meta.findUpload(db, match.repository, upload.id))?.hashState ?? null : upload.hashState;
      const digester = await MultiDigester.resume(ALL_ALGORITHMS, state);
      const actual = await digestSpan(digest.algorithm, offset, () => digester.digest(digest.algorithm));
      if (actual !== digest.value) {
        // A PUT that added no bytes leaves the session as it was (the client may retry with the right digest or
        // cancel); one whose final chunk was already appended has spoilt the session, which is discarded.
        if (appended) await discardUpload(upload.id);
        throw errors.digestInvalid(undefined, { expected: digest.value, actual });
      }
      // The commit holds the session's lease: a second PUT of the session (a client retrying after its answer was
      // lost) answers 416 until this one is done, instead of writing the same object at the same time.
      if (!(await meta.claimUpload(db, upload.id, offset, leaseMs))) throw errors.rangeInvalid('another request is completing this upload', offset);
      leased = true;
      try {
        committed = { size: offset, pin: await commitObject(upload.id, digest.value, offset) };
      } catch (err) {
        await meta.releaseUpload(db, upload.id).catch(() => undefined);
        throw err;
      }
    }
    try {
      await recordBlob(req, match.repository, digest.value, committed.size, upload.id, committed.pin);
    } catch (err) {
      if (leased) await meta.releaseUpload(db, upload.id).catch(() => undefined);
      throw err;
    }
    sendBlobCreated(res, match.repository, digest.value);
  }

  async function discardUpload(id: string): Promise<void> {
    await meta.deleteUpload(db, id);
    await store.deleteUpload(id);
  }

  async function uploadStatus(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const upload = await loadUpload(req, match);
    sendUploadStatus(res, 204, match.repository, upload.id, upload.offset);
  }

  async function cancelUpload(req: Request, res: Response, match: RouteMatch): Promise<void> {
    const upload = await loadUpload(req, match);
    await discardUpload(upload.id);
    deps.metrics?.uploadsEnded.add(1, { result: 'cancelled' });
    res.status(204).setHeader('Content-Length', '0');
    res.end();
  }

  async function deleteBlob(req: Request, res: Response, match: RouteMatch): Promise<void> {
    if (!config.registry.deleteEnabled) throw errors.unsupported('deletes are disabled on this registry');
    const digest = parseDigest(match.param).value;
    const ctx = requestContext(req, config);
    await db.transaction(async (tx) => {
      const repo = await meta.findRepository(tx, match.repository);
      if (!repo || !(await meta.unlinkBlob(tx, repo.id, digest))) throw errors.blobUnknown(digest);
      await appendEvent(tx, events, {
        type: EVENT_TYPES.blobDeleted,
        repository: match.repository,
        subject: `${match.repository}@${digest}`,
        context: ctx,
        data: { digest },
      });
      await meta.queueBlobReview(tx, [digest], 'unlinked from repository', reviewDelayMs);
    });
    // Invariant: the descriptor cache forgets an unlinked blob before the delete is answered.
    reader.forget(match.repository, digest);
    deps.onEventsCommitted?.();
    res.status(202).setHeader('Content-Length', '0');
    res.end();
  }

  const app = createServiceApp(async () => {
    await db.query('SELECT 1');
    await store.ping();
  });
  app.use(
    dispatchRoutes<'blob'>({
      'uploadStart POST': startUpload,
      'upload PATCH': patchUpload,
      'upload PUT': completeUpload,
      'upload GET': uploadStatus,
      'upload DELETE': cancelUpload,
      'blob GET': (req, res, match) => reader.serve(req, res, match),
      'blob DELETE': deleteBlob,
    }),
  );
  return withFastReads(finishServiceApp(app, deps.logger), ['blob'], reader.serve, deps.logger);
}
