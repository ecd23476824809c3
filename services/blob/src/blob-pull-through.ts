/**
 * The pull-through cache's blob misses: a blob a proxied repository does not hold is fetched from the namespace's
 * upstream, stored as ordinary content (a scratch upload committed under its digest, then `recordBlob`, so its
 * `blob.uploaded` event fires, naming the cache in `data.proxy`, and the garbage collector knows it) and, when a
 * client is waiting, streamed to it in the same pass.
 *
 * Invariants:
 * - Nothing unverified is committed: the bytes are hashed as they are written and the scratch upload becomes the
 *   blob's object only when the digest matches (`storeWholeBody`).
 * - A client never receives a whole body that is wrong: the last chunk is held back until the digest has been
 *   verified, and a mismatch or a broken upstream body destroys the client's connection instead (its Content-Length
 *   or chunked framing is then incomplete, which every client treats as a failed download).
 * - A client that goes away does not stop the fetch: the cache still gets the blob.
 * - Single flight, in two layers: concurrent misses of one blob in this process share one fetch (a map of promises);
 *   across processes (blob replicas) the fetch is done by whoever holds the blob's lease in the database
 *   (`createFetchLeases`); the others poll until the blob is stored, or until the lease is gone or expired (a
 *   failed fetch, or a holder that died), and then take it themselves.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, Transform, type TransformCallback, pipeline } from 'node:stream';
import { durationMs } from '@lading/config';
import type { EventContext } from '@lading/events';
import { writeHead } from '@lading/http';
import * as meta from '@lading/metadata';
import { type Digest, OciError, errors } from '@lading/oci';
import type { ServiceDeps } from '@lading/runtime';
import type { BlobStore } from '@lading/storage';
import type { Logger, RegistryMetrics } from '@lading/telemetry';
import { type ProxiedRepository, type ProxyRules, createFetchLeases, ociErrorOfUpstream } from '@lading/upstream';
import { type BlobWriteDeps, type StoredBlob, recordBlob, storeWholeBody } from './blob-writes';

/** What blob pull-through is built from. */
export interface BlobPullThroughDeps {
  writes: BlobWriteDeps;
  proxies: ProxyRules;
  logger: Logger;
  /** Called after a fetched blob's events committed (wakes the outbox relay). */
  onEventsCommitted?: () => void;
  /** Counts misses, waits and upstream failures, and the bytes fetched; none recorded without it. */
  metrics?: Pick<RegistryMetrics, 'proxyRequests' | 'proxyUpstreamBytes'>;
}

/** One blob to bring into a proxied repository. */
export interface BlobPull {
  repository: string;
  digest: Digest;
  context: EventContext;
  /** A client waiting for the whole blob (a GET without Range): it gets the bytes as they arrive. */
  client?: { req: IncomingMessage; res: ServerResponse };
}

/** Fetches blobs that proxied repositories miss. */
export interface BlobPullThrough {
  /** The proxy rule of a repository, or null when it is no pull-through cache. */
  match(repository: string): ProxiedRepository | null;
  /**
   * Brings a blob into a proxied repository from its upstream, streaming it to `client` when given (the answer is
   * then sent, or the connection destroyed), unless the same blob is being fetched already (here or by another
   * process): then it waits for that fetch and resolves with `waited` set, having sent nothing. Throws an OciError
   * when the upstream cannot give it.
   */
  pull(source: ProxiedRepository, pull: BlobPull): Promise<StoredBlob & { waited?: boolean }>;
}

/** Passes chunks on one behind, and the last one only when `release` is called (after verification). */
class HoldLast extends Transform {
  private last: Buffer | null = null;
  private released = false;
  private flushed: TransformCallback | null = null;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const previous = this.last;
    this.last = chunk;
    callback(null, previous ?? undefined);
  }

  override _flush(callback: TransformCallback): void {
    if (this.released) callback(null, this.last ?? undefined);
    else this.flushed = callback;
  }

  /** The bytes are verified: let the last chunk through and end. */
  release(): void {
    this.released = true;
    const flushed = this.flushed;
    this.flushed = null;
    flushed?.(null, this.last ?? undefined);
  }
}

/** Creates blob pull-through over the blob writes. */
export function createBlobPullThrough(deps: BlobPullThroughDeps): BlobPullThrough {
  const { writes, logger } = deps;
  const count = (namespace: string, result: 'miss' | 'wait' | 'error') => deps.metrics?.proxyRequests.add(1, { namespace, kind: 'blob', result });

  async function pull(source: ProxiedRepository, job: BlobPull): Promise<StoredBlob> {
    const { repository, digest } = job;
    let fetched;
    try {
      fetched = await source.upstream.getBlob(source.upstreamRepository, digest.value);
    } catch (err) {
      count(source.namespace, 'error');
      logger.warn({ err, repository, digest: digest.value }, 'pull-through: the upstream did not give a blob');
      throw ociErrorOfUpstream(err, source.namespace, () => errors.blobUnknown(digest.value));
    }
    const body = fetched.body;
    const toStore = new PassThrough({ highWaterMark: 1024 * 1024 });
    // An upstream that breaks off destroys the store's side with its error, which fails storeWholeBody.
    pipeline(body, toStore, () => undefined);
    let toClient: HoldLast | null = null;
    const client = job.client;
    if (client) {
      toClient = new HoldLast();
      const headers: Record<string, string> = {
        'Docker-Content-Digest': digest.value,
        ETag: `"${digest.value}"`,
        'Content-Type': 'application/octet-stream',
        ...(fetched.size !== null ? { 'Content-Length': String(fetched.size) } : {}),
      };
      writeHead(client.res, 200, headers);
      body.pipe(toClient).pipe(client.res);
      const clientSide = toClient;
      client.res.on('close', () => {
        if (client.res.writableFinished) return;
        // The client left: keep filling the cache without it.
        body.unpipe(clientSide);
        clientSide.destroy();
      });
    }
    const scratch = randomUUID();
    try {
      const { size, pin } = await storeWholeBody(writes, { uploadId: scratch, digest, body: toStore });
      // Its blob.uploaded names the cache (data.proxy): scanners see what enters through it.
      await recordBlob(writes, { repository, digest: digest.value, size, uploadId: null, pin, context: { ...job.context, proxy: source.proxy } });
      deps.onEventsCommitted?.();
      count(source.namespace, 'miss');
      deps.metrics?.proxyUpstreamBytes.add(size, { namespace: source.namespace });
      toClient?.release();
      logger.info({ repository, digest: digest.value, size }, 'pull-through: blob cached');
      return { digest: digest.value, size };
    } catch (err) {
      count(source.namespace, 'error');
      body.destroy();
      await writes.store.deleteUpload(scratch).catch(() => undefined);
      logger.warn({ err, repository, digest: digest.value }, 'pull-through: a blob from the upstream was not stored');
      if (client) {
        // Headers are out: the only way to tell the client is to break the connection before the body's end.
        toClient?.destroy();
        client.res.destroy(err instanceof Error ? err : new Error(String(err)));
      }
      const mismatch = err instanceof OciError && err.code === 'DIGEST_INVALID';
      throw errors.unavailable(mismatch ? `the upstream of ${source.namespace} sent bytes that are not ${digest.value}` : `${digest.value} could not be fetched from the upstream of ${source.namespace}`);
    }
  }

  const leases = createFetchLeases({ db: writes.db, logger });

  /**
   * Single flight across processes (`createFetchLeases`): fetches the blob under its lease, streaming to the client,
   * or, while another process holds the lease, waits until the blob is stored and resolves with `waited`.
   */
  async function pullLeased(source: ProxiedRepository, job: BlobPull, key: string): Promise<StoredBlob & { waited?: boolean }> {
    const { value, waited } = await leases.once<StoredBlob>({
      key,
      stored: async () => {
        const row = await meta.findRepositoryBlob(writes.db, job.repository, job.digest.value);
        return row && { digest: row.digest, size: Number(row.size) };
      },
      fetch: () => pull(source, job),
      onWait: () => count(source.namespace, 'wait'),
    });
    return waited ? { ...value, waited } : value;
  }

  /** The fetch in flight for each repository and digest: later misses wait for it instead of asking again. */
  const inFlight = new Map<string, Promise<StoredBlob & { waited?: boolean }>>();

  /**
   * Single flight within this process: the first miss fetches (streaming to its client) or waits for another
   * process's fetch, later ones for the same blob wait for it and then return, for the reader to answer from the
   * cache. A failed fetch fails its waiters too (each gets the same OCI error); the next miss after it tries again.
   */
  function pullOnce(source: ProxiedRepository, job: BlobPull): { fetch: Promise<StoredBlob & { waited?: boolean }>; waited: boolean } {
    const key = `${job.repository}@${job.digest.value}`;
    const running = inFlight.get(key);
    if (running) {
      count(source.namespace, 'wait');
      return { fetch: running, waited: true };
    }
    const fetch = pullLeased(source, job, key).finally(() => inFlight.delete(key));
    inFlight.set(key, fetch);
    return { fetch, waited: false };
  }

  return {
    match: (repository) => deps.proxies.match(repository),
    pull: (source, job) => {
      const { fetch, waited } = pullOnce(source, job);
      // A waiter's client was not written to: its caller answers it from the cache.
      return waited ? fetch.then((blob) => ({ ...blob, waited: true })) : fetch;
    },
  };
}

/**
 * Blob pull-through as a blob service is wired with it, in the embedded registry and in a distributed blob process
 * alike: over the service's dependencies and store, with the process's proxy rules (`openProxyRules`).
 */
export function blobPullThroughOf(deps: ServiceDeps, store: BlobStore, proxies: ProxyRules): BlobPullThrough {
  return createBlobPullThrough({
    writes: { db: deps.db, store, events: deps.events, reviewDelayMs: durationMs(deps.config.gc.reviewDelay) },
    proxies,
    logger: deps.logger,
    onEventsCommitted: deps.onEventsCommitted,
    metrics: deps.metrics,
  });
}
