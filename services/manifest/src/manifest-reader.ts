/**
 * Manifest GET/HEAD, by digest and by tag, with the per-process caches of the pull path.
 *
 * - Manifests are cached by repository and digest (content-addressed, so the bytes never change), in a byte-bounded
 *   LRU. Tag answers (repository, tag → digest) are cached with a short time to live.
 * - Invariant: a deleted manifest is never served from the cache afterwards.
 *   - When the database is this process's own (PGlite, the embedded mode), every API delete runs here and forgets
 *     its entries before its response is sent; deletes by the garbage collector arrive as events and are forgotten
 *     when they do (in-process, right after the collector's commit). A read that raced an invalidation does not
 *     store what it read (the invalidation epoch moved), so a delete can never be undone by a slow read.
 *   - When the database is shared (Postgres: other replicas write it), existence is confirmed per request with one
 *     primary-key lookup, and tags are resolved per request too; only the bytes come from the cache. Nothing a
 *     replica caches can then outlive a delete made through another replica, and tag answers are never stale.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LruCache } from '@lading/cache';
import { durationMs, LadingConfig } from '@lading/config';
import { EVENT_TYPES, LadingEvent } from '@lading/events';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import { OciError, RouteMatch, errors, isValidTag, looksLikeDigest, parseDigest } from '@lading/oci';
import { matchesEtag, writeHead } from '@lading/http';
import { type RegistryMetrics, cacheLookupCounter } from '@lading/telemetry';
import { accepts } from './content-negotiation';

/** A manifest as the pull path serves it, with its response headers computed once. */
export interface CachedManifest {
  digest: string;
  mediaType: string;
  payload: Buffer;
  /** Headers of a 200 by tag (and, with `immutableHeaders`, by digest). */
  headers: Record<string, string>;
  /** Headers of a 200 by digest: the same plus Cache-Control (a digest's answer never changes). */
  immutableHeaders: Record<string, string>;
  etag: string;
}

/** What the reader is built from. */
export interface ManifestReaderDeps {
  /** The database; whether it is shared (anything but PGlite, which only this process opens) decides the design. */
  db: Pick<Database, 'query' | 'driverName'>;
  config: LadingConfig;
  /** Counts cache lookups (`lading_cache_requests_total{cache="manifest"|"tag"}`). */
  metrics?: Pick<RegistryMetrics, 'cacheRequests'>;
}

/** Serves manifest reads and keeps its caches consistent with writes. */
export interface ManifestReader {
  /**
   * Answers GET/HEAD of a manifest on a bare or express request: at once (no promise) when the cache answers.
   * `onServed` hears the digest of a manifest answered (200 or 304), for the last-pulled times.
   */
  serve(req: IncomingMessage, res: ServerResponse, match: RouteMatch, onServed?: ServedListener): void | Promise<void>;
  /** Forgets a manifest of a repository (it was deleted) and every tag answer that named it. */
  forgetManifest(repository: string, digest: string): void;
  /** Forgets a tag answer (the tag moved or was deleted). */
  forgetTag(repository: string, tag: string): void;
  /** Forgets every manifest and tag of a repository (it was deleted). */
  forgetRepository(repository: string): void;
  /** Applies a registry event to the caches (deletes and tag moves made elsewhere). */
  onEvent(event: LadingEvent): void;
  /** Whether existence is confirmed against the database per request (a shared database). */
  readonly confirmsExistence: boolean;
}

/** Hears that a manifest of a repository was served, and the request it answered (whose principal the audit counts). */
export type ServedListener = (repository: string, digest: string, req: IncomingMessage) => void;

/** The most distinct Accept headers whose verdicts are remembered (clients send a handful). */
const ACCEPT_MEMO_LIMIT = 512;

function toCached(row: meta.ManifestRow): CachedManifest {
  const etag = `"${row.digest}"`;
  const headers = {
    'Docker-Content-Digest': row.digest,
    ETag: etag,
    'Content-Type': row.mediaType,
    'Content-Length': String(row.payload.length),
  };
  return {
    digest: row.digest,
    mediaType: row.mediaType,
    payload: row.payload,
    headers,
    immutableHeaders: { ...headers, 'Cache-Control': 'max-age=31536000, immutable' },
    etag,
  };
}

/** Creates the manifest reader with its caches. */
export function createManifestReader(deps: ManifestReaderDeps): ManifestReader {
  const { db, config } = deps;
  // Not the configuration's driver: a process may be handed a shared database whatever its mode says.
  const confirmsExistence = db.driverName !== 'pglite';
  const manifests = new LruCache<string, CachedManifest>({ maxBytes: config.limits.manifestCacheBytes });
  const tags = new LruCache<string, string>({ maxBytes: Math.min(config.limits.manifestCacheBytes, 16 * 1024 * 1024), ttlMs: durationMs(config.limits.tagCacheTtl) });
  /** Media type → Accept header → whether it admits that type. */
  const acceptVerdicts = new Map<string, Map<string, boolean>>();
  /** Moves on every invalidation; a read that began before it does not store what it read. */
  let epoch = 0;

  const manifestKey = (repository: string, digest: string) => `${repository}@${digest}`;
  const lookups = { manifest: cacheLookupCounter(deps.metrics, 'manifest'), tag: cacheLookupCounter(deps.metrics, 'tag') };
  const counted = <T>(cache: 'manifest' | 'tag', value: T | undefined): T | undefined => {
    lookups[cache](value !== undefined);
    return value;
  };
  const tagKey = (repository: string, tag: string) => `${repository}:${tag}`;

  function admits(accept: string | undefined, mediaType: string): boolean {
    if (!accept) return true;
    let verdicts = acceptVerdicts.get(mediaType);
    if (!verdicts) {
      verdicts = new Map();
      acceptVerdicts.set(mediaType, verdicts);
    }
    let verdict = verdicts.get(accept);
    if (verdict === undefined) {
      verdict = accepts(accept, mediaType);
      if (verdicts.size >= ACCEPT_MEMO_LIMIT) verdicts.clear();
      verdicts.set(accept, verdict);
    }
    return verdict;
  }

  function remember(repository: string, row: meta.ManifestRow, startedAt: number): CachedManifest {
    const cached = toCached(row);
    if (epoch === startedAt) manifests.set(manifestKey(repository, row.digest), cached, row.payload.length + 400);
    return cached;
  }

  /** A cache hit that needs no database answers at once (not a promise): pulls by digest are mostly that. */
  function byDigest(repository: string, digest: string): CachedManifest | Promise<CachedManifest | null> {
    const cached = counted('manifest', manifests.get(manifestKey(repository, digest)));
    if (cached && !confirmsExistence) return cached;
    return byDigestFromDatabase(repository, digest, cached);
  }

  async function byDigestFromDatabase(repository: string, digest: string, cached: CachedManifest | undefined): Promise<CachedManifest | null> {
    if (cached) {
      if (await meta.storedManifestExists(db, repository, digest)) return cached;
      manifests.delete(manifestKey(repository, digest));
      return null;
    }
    const startedAt = epoch;
    const row = await meta.findManifestByDigest(db, repository, digest);
    return row ? remember(repository, row, startedAt) : null;
  }

  async function byTag(repository: string, tag: string): Promise<CachedManifest | null> {
    const key = tagKey(repository, tag);
    if (confirmsExistence) {
      // The tag row joins its manifest (a foreign key), so it existing means the manifest does.
      const digest = await meta.tagDigest(db, repository, tag);
      if (!digest) return null;
      const cached = counted('manifest', manifests.get(manifestKey(repository, digest)));
      if (cached) return cached;
    } else {
      const digest = counted('tag', tags.get(key));
      const cached = digest === undefined ? undefined : counted('manifest', manifests.get(manifestKey(repository, digest)));
      if (cached) return cached;
    }
    const startedAt = epoch;
    const row = await meta.findManifestByTag(db, repository, tag);
    if (!row) return null;
    if (epoch === startedAt) tags.set(key, row.digest, key.length + row.digest.length);
    return remember(repository, row, startedAt);
  }

  function forgetManifest(repository: string, digest: string): void {
    epoch++;
    manifests.delete(manifestKey(repository, digest));
    const prefix = `${repository}:`;
    tags.deleteWhere((key, value) => value === digest && key.startsWith(prefix));
  }

  function forgetTag(repository: string, tag: string): void {
    epoch++;
    tags.delete(tagKey(repository, tag));
  }

  function forgetRepository(repository: string): void {
    epoch++;
    manifests.deleteWhere((key) => key.startsWith(`${repository}@`));
    tags.deleteWhere((key) => key.startsWith(`${repository}:`));
  }

  /** Answers a manifest read with what the caches or the database found (throws what the error handler renders). */
  function answer(
    req: IncomingMessage,
    res: ServerResponse,
    reference: string,
    manifest: CachedManifest | null,
    byDigestRef: boolean,
    repository: string,
    onServed: ServedListener | undefined,
  ): void {
    if (!manifest) throw errors.manifestUnknown(reference);
    if (!admits(req.headers.accept, manifest.mediaType)) {
      throw new OciError('MANIFEST_UNKNOWN', `the manifest is a ${manifest.mediaType}, which the Accept header does not admit`, {
        mediaType: manifest.mediaType,
      });
    }
    onServed?.(repository, manifest.digest, req);
    if (matchesEtag(req.headers['if-none-match'], manifest.etag)) {
      writeHead(res, 304, { 'Docker-Content-Digest': manifest.digest, ETag: manifest.etag, 'Content-Type': manifest.mediaType });
      res.end();
      return;
    }
    writeHead(res, 200, byDigestRef ? manifest.immutableHeaders : manifest.headers);
    if (req.method === 'HEAD') res.end();
    else res.end(manifest.payload);
  }

  return {
    confirmsExistence,
    forgetManifest,
    forgetTag,
    forgetRepository,
    onEvent(event) {
      const data = event.data;
      if (!data) return;
      if ((event.type === EVENT_TYPES.tagUpdated || event.type === EVENT_TYPES.tagDeleted) && data.tag) forgetTag(data.repository, data.tag);
      else if (event.type === EVENT_TYPES.manifestDeleted && data.digest) forgetManifest(data.repository, data.digest);
      else if (event.type === EVENT_TYPES.repositoryDeleted) forgetRepository(data.repository);
    },
    serve(req, res, match, onServed) {
      const reference = match.param;
      const { repository } = match;
      if (looksLikeDigest(reference)) {
        const found = byDigest(repository, parseDigest(reference).value);
        if (found instanceof Promise) return found.then((manifest) => answer(req, res, reference, manifest, true, repository, onServed));
        return answer(req, res, reference, found, true, repository, onServed);
      }
      // No tag breaking the grammar can exist.
      if (!isValidTag(reference)) throw errors.manifestUnknown(reference.slice(0, 200));
      return byTag(repository, reference).then((manifest) => answer(req, res, reference, manifest, false, repository, onServed));
    },
  };
}
