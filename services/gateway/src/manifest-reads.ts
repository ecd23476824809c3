/**
 * Manifest reads in the gateway (distributed mode): concurrent GET/HEAD of one manifest share one read of the
 * manifest service, and the bytes of manifests come from a content-addressed cache in the gateway.
 *
 * Without it, every manifest GET costs the gateway an HTTP exchange with the manifest service and that service a
 * primary-key query, and those two hops were most of the cluster's CPU per manifest GET (docs/benchmarks.md).
 *
 * Consistency is what it was: every client read is answered from a read of the manifest service that was sent
 * after the client's request arrived. Reads of the same manifest (same path, caller, groups and Accept header) that
 * arrive while one is in flight wait for the next, which is sent when the one in flight is answered, on behalf of all
 * of them; so a delete or a tag move answered before a client's request arrived (through any gateway) is always seen,
 * as `replicas.spec.ts` proves. Under load a read stands for as many clients as arrived during one exchange, and the
 * manifest service counts that many pulls for the audit trail (`PULLS_HEADER`).
 *
 * The shared read is a HEAD when the gateway already holds the bytes of the digest it expects (the reference's own,
 * or the one the tag named last time); otherwise a GET, whose verified body is kept. Bytes are kept by digest only
 * (the same for every repository); the manifest service's answer says whether a repository has them.
 *
 * Conditional reads (`If-None-Match`) and anything that is not a manifest GET/HEAD go to the service as before, as
 * do the reads of a batch whose shared answer was not a 200 with a digest (each then gets the service's own answer).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LruCache } from '@lading/cache';
import { PRINCIPAL_GROUPS_HEADER, PRINCIPAL_HEADER, PULLS_HEADER, type RawHandler, localsOf, writeHead } from '@lading/http';
import { looksLikeDigest } from '@lading/oci';
import type { UpstreamAnswer, UpstreamProxy } from './upstream-proxy';

/** What the manifest reads are built from. */
export interface ManifestReadsOptions {
  /** The proxy to the manifest service's replicas. */
  upstream: Pick<UpstreamProxy, 'handler' | 'exchange'>;
  /** Bound of the manifest bytes kept (`limits.manifestCacheBytes`). */
  maxBytes: number;
}

interface Waiter {
  req: IncomingMessage;
  res: ServerResponse;
  next: (err?: unknown) => void;
}

/** The reads of one key: whether one is in flight, and who waits for the next. */
interface Batch {
  waiting: Waiter[] | null;
}

/** Upstream headers the gateway sets itself (per client request) or that are per connection. */
const NOT_COPIED = new Set(['x-request-id', 'docker-distribution-api-version', 'date', 'content-length']);

const sha256Of = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function header(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}

/** Creates the manifest service's handler in the gateway: `upstream.handler` with manifest reads shared and cached. */
export function createManifestReads(options: ManifestReadsOptions): RawHandler {
  const { upstream } = options;
  const bytes = new LruCache<string, Buffer>({ maxBytes: options.maxBytes });
  /** Read key → the digest its last shared read answered (for tags: the digest to expect next time). */
  const lastDigest = new LruCache<string, string>({ maxBytes: Math.min(options.maxBytes, 4 * 1024 * 1024) });
  const batches = new Map<string, Batch>();

  /** Answers one waiter from the shared answer; the bytes are the manifest's (undefined for a HEAD-only batch). */
  function answer(waiter: Waiter, answered: UpstreamAnswer, payload: Buffer | undefined): void {
    const headers: Record<string, string | string[]> = {};
    for (const name in answered.headers) if (!NOT_COPIED.has(name)) headers[name] = answered.headers[name];
    const length = payload?.length ?? answered.headers['content-length'];
    if (length !== undefined) headers['content-length'] = String(length);
    writeHead(waiter.res, 200, headers);
    if (waiter.req.method === 'HEAD' || !payload) waiter.res.end();
    else waiter.res.end(payload);
  }

  /** Keeps a GET's body when it is what its digest says. */
  function keep(digest: string, body: Buffer): boolean {
    if (!digest.startsWith('sha256:') || sha256Of(body) !== digest) return false;
    bytes.set(digest, body, body.length + 200);
    return true;
  }

  async function read(key: string, path: string, waiters: Waiter[]): Promise<void> {
    const first = waiters[0];
    const reference = path.slice(path.lastIndexOf('/') + 1);
    const expected = looksLikeDigest(reference) ? reference : lastDigest.get(key);
    const needsBytes = waiters.some((w) => w.req.method === 'GET');
    const method = !needsBytes || (expected !== undefined && bytes.get(expected) !== undefined) ? 'HEAD' : 'GET';
    let answered: UpstreamAnswer;
    try {
      answered = await upstream.exchange(first.req, method, path, { [PULLS_HEADER]: String(waiters.length) });
    } catch (err) {
      for (const w of waiters) w.next(err);
      return;
    }
    const digest = header(answered.headers['docker-content-digest']);
    if (answered.statusCode !== 200 || !digest) {
      // The service's own answer for each (an error body a HEAD did not carry, a redirect, ...).
      for (const w of waiters) upstream.handler(w.req, w.res, w.next);
      return;
    }
    lastDigest.set(key, digest, key.length + digest.length);
    let payload = method === 'GET' && keep(digest, answered.body) ? answered.body : bytes.get(digest);
    if (!payload && needsBytes) {
      // The tag moved to a manifest this gateway has not read yet: its bytes, counted as no further pull.
      try {
        const body = await upstream.exchange(first.req, 'GET', path, { [PULLS_HEADER]: '0' });
        if (body.statusCode === 200 && header(body.headers['docker-content-digest']) === digest && keep(digest, body.body)) payload = body.body;
      } catch {
        // Each waiter asks on its own below.
      }
      if (!payload) {
        for (const w of waiters) upstream.handler(w.req, w.res, w.next);
        return;
      }
    }
    for (const w of waiters) answer(w, answered, payload);
  }

  /** Runs the reads of a key one after another, each for those who arrived before it was sent. */
  function run(key: string, path: string, batch: Batch, waiters: Waiter[]): void {
    void read(key, path, waiters).finally(() => {
      const nextWaiters = batch.waiting;
      if (!nextWaiters) {
        batches.delete(key);
        return;
      }
      batch.waiting = null;
      run(key, path, batch, nextWaiters);
    });
  }

  return (req, res, next) => {
    const match = localsOf(res).route;
    const method = req.method;
    if (!match || match.route.name !== 'manifest' || (method !== 'GET' && method !== 'HEAD') || req.headers['if-none-match'] !== undefined) {
      upstream.handler(req, res, next);
      return;
    }
    const path = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const key = `${header(req.headers[PRINCIPAL_HEADER])}\n${header(req.headers[PRINCIPAL_GROUPS_HEADER])}\n${header(req.headers.accept)}\n${path}`;
    const waiter = { req, res, next };
    const batch = batches.get(key);
    if (batch) {
      (batch.waiting ??= []).push(waiter);
      return;
    }
    const started: Batch = { waiting: null };
    batches.set(key, started);
    run(key, path, started, [waiter]);
  };
}
