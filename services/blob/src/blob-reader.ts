/**
 * Blob GET/HEAD on the pull path, with a per-process cache of blob descriptors (repository, digest → size).
 *
 * Invariant: a deleted blob is never served from the cache afterwards. With the process's own database (PGlite,
 * the embedded mode), API deletes run here and forget the descriptor before they are answered, the garbage
 * collector's deletes arrive as `blob.deleted` events, and a read that raced an invalidation does not store what it
 * read. With a shared database (Postgres), the descriptor is looked up per request (one primary-key lookup that
 * also yields the size), so another replica's delete is seen at once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { LruCache } from '@lading/cache';
import { durationMs, LadingConfig } from '@lading/config';
import { EVENT_TYPES, LadingEvent } from '@lading/events';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import { OciError, RouteMatch, errors, parseDigest } from '@lading/oci';
import { BlobNotFoundError, BlobStore, blobKey, canCopyTo, canRedirect } from '@lading/storage';
import { type Logger, type RegistryMetrics, cacheLookupCounter } from '@lading/telemetry';
import { OBJECT_FETCH_HEADER, matchesEtag, writeHead } from '@lading/http';
import { parseRangeHeader } from './byte-range';

/** What the reader is built from. */
export interface BlobReaderDeps {
  /** The database; whether it is shared (anything but PGlite, which only this process opens) decides the design. */
  db: Pick<Database, 'query' | 'driverName'>;
  store: BlobStore;
  config: LadingConfig;
  logger: Logger;
  /** Counts descriptor cache lookups (`lading_cache_requests_total{cache="blob_descriptor"}`). */
  metrics?: Pick<RegistryMetrics, 'cacheRequests'>;
}

/** Serves blob reads and keeps its descriptor cache consistent with deletes. */
export interface BlobReader {
  /** Answers GET/HEAD of a blob on a bare or express request. */
  serve(req: IncomingMessage, res: ServerResponse, match: RouteMatch): Promise<void>;
  /** Forgets a blob of a repository (it was unlinked or deleted). */
  forget(repository: string, digest: string): void;
  /** Forgets every blob of a repository (it was deleted). */
  forgetRepository(repository: string): void;
  /** Applies a registry event to the cache. */
  onEvent(event: LadingEvent): void;
}

/** A cached blob with the headers every answer about it carries. */
interface Descriptor {
  size: number;
  headers: Record<string, string>;
  /** The headers of a 200 with the whole blob. */
  fullHeaders: Record<string, string>;
  etag: string;
}

function describe(digest: string, size: number): Descriptor {
  const etag = `"${digest}"`;
  const headers = {
    'Docker-Content-Digest': digest,
    ETag: etag,
    'Accept-Ranges': 'bytes',
    // A digest's bytes never change.
    'Cache-Control': 'max-age=31536000, immutable',
    'Content-Type': 'application/octet-stream',
  };
  return { size, etag, headers, fullHeaders: { ...headers, 'Content-Length': String(size) } };
}

/** Creates the blob reader with its descriptor cache. */
export function createBlobReader(deps: BlobReaderDeps): BlobReader {
  const { db, store, config, logger } = deps;
  // Not the configuration's driver: a process may be handed a shared database whatever its mode says.
  const confirmsExistence = db.driverName !== 'pglite';
  const descriptors = new LruCache<string, Descriptor>({ maxBytes: config.limits.blobCacheBytes });
  const redirectStore = config.storage.redirect && canRedirect(store) ? store : null;
  // Redirects off, a gateway may still fetch the object itself (OBJECT_FETCH_HEADER): the client never sees the URL.
  const fetchStore = !redirectStore && canRedirect(store) ? store : null;
  const presignTtlSeconds = Math.max(1, Math.floor(durationMs(config.storage.presignTtl) / 1000));
  let epoch = 0;
  const keyOf = (repository: string, digest: string) => `${repository}@${digest}`;
  const countLookup = cacheLookupCounter(deps.metrics, 'blob_descriptor');

  async function find(repository: string, digest: string): Promise<Descriptor | null> {
    const key = keyOf(repository, digest);
    if (!confirmsExistence) {
      const cached = descriptors.get(key);
      countLookup(cached !== undefined);
      if (cached) return cached;
    }
    const startedAt = epoch;
    const row = await meta.findRepositoryBlob(db, repository, digest);
    if (!row) return null;
    const descriptor = describe(digest, Number(row.size));
    if (!confirmsExistence && epoch === startedAt) descriptors.set(key, descriptor, key.length + 300);
    return descriptor;
  }

  function forget(repository: string, digest: string): void {
    epoch++;
    descriptors.delete(keyOf(repository, digest));
  }

  function forgetRepository(repository: string): void {
    epoch++;
    descriptors.deleteWhere((key) => key.startsWith(`${repository}@`));
  }

  return {
    forget,
    forgetRepository,
    onEvent(event) {
      if (event.type === EVENT_TYPES.blobDeleted && event.data?.digest) forget(event.data.repository, event.data.digest);
      else if (event.type === EVENT_TYPES.repositoryDeleted && event.data) forgetRepository(event.data.repository);
    },
    async serve(req, res, match) {
      const digest = parseDigest(match.param).value;
      const blob = await find(match.repository, digest);
      if (!blob) throw errors.blobUnknown(digest);
      if (matchesEtag(req.headers['if-none-match'], blob.etag)) {
        writeHead(res, 304, blob.headers);
        res.end();
        return;
      }
      const range = parseRangeHeader(req.headers.range, blob.size);
      if (range.kind === 'unsatisfiable') {
        throw new OciError('RANGE_INVALID', 'requested range not satisfiable', { size: blob.size }, { headers: { 'Content-Range': `bytes */${blob.size}` } });
      }
      if (redirectStore && req.method === 'GET' && range.kind === 'full') {
        // Pulls scale out to the object store: the client fetches the bytes from a presigned URL.
        writeHead(res, 307, {
          'Docker-Content-Digest': digest,
          Location: await redirectStore.presignGet(blobKey(digest), presignTtlSeconds),
          'Cache-Control': 'no-store',
          'Content-Length': '0',
        });
        res.end();
        return;
      }
      if (fetchStore && req.method === 'GET' && range.kind === 'full' && req.headers[OBJECT_FETCH_HEADER] === '1') {
        // The blob's headers for the gateway to answer with, but the bytes from the store: they cross one process fewer.
        writeHead(res, 307, {
          ...blob.headers,
          [OBJECT_FETCH_HEADER]: '1',
          Location: await fetchStore.presignGet(blobKey(digest), presignTtlSeconds),
          'Content-Length': '0',
        });
        res.end();
        return;
      }
      const status = range.kind === 'partial' ? 206 : 200;
      const headers =
        range.kind === 'partial'
          ? { ...blob.headers, 'Content-Range': `bytes ${range.range.start}-${range.range.end}/${blob.size}`, 'Content-Length': String(range.range.end - range.range.start + 1) }
          : blob.fullHeaders;
      if (req.method === 'HEAD') {
        writeHead(res, status, headers);
        res.end();
        return;
      }
      let body: Readable;
      try {
        // The whole blob as a range too: the driver then knows its size and sizes its reads to it.
        body = await store.read(blobKey(digest), range.kind === 'partial' ? range.range : blob.size > 0 ? { start: 0, end: blob.size - 1 } : undefined);
      } catch (err) {
        if (err instanceof BlobNotFoundError) {
          forget(match.repository, digest);
          logger.error({ digest, repository: match.repository }, 'blob metadata exists but the object is missing');
          throw errors.blobUnknown(digest);
        }
        throw err;
      }
      writeHead(res, status, headers);
      const failMidStream = (err: unknown) => {
        logger.error({ err, digest }, 'blob read failed mid-stream');
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      };
      if (canCopyTo(body)) {
        // The driver copies into the response through reused buffers; it closes what it opened however it ends.
        body.copyTo(res).catch(failMidStream);
        return;
      }
      body.on('error', failMidStream);
      res.on('close', () => body.destroy());
      body.pipe(res);
    },
  };
}
