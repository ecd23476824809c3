/**
 * Dispatch to a service's replicas over HTTP (distributed mode): keep-alive undici pools, round robin, bodies
 * streamed both ways with backpressure (a blob is never buffered). Connections stay open after a HEAD too (`reset:
 * false`; undici closes them by default, for servers that send a body with a HEAD answer, which Lading's services do
 * not): one new connection per HEAD cost the gateway about a fifth of its CPU under shared manifest reads. A replica that refuses the connection is skipped
 * when the request can be replayed (no body sent yet); when no replica answers, the client gets 503 UNAVAILABLE.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Readable, finished } from 'node:stream';
import { context, trace } from '@opentelemetry/api';
import type { Agent } from 'undici';
import { loadUndici } from '@lading/client';
import { OBJECT_FETCH_HEADER, PRINCIPAL_GROUPS_HEADER, PRINCIPAL_HEADER, PRINCIPAL_PROOF_HEADER, REQUEST_ID_HEADER, type RawHandler, headOf, principalProof } from '@lading/http';
import { OciError } from '@lading/oci';
import type { Logger } from '@lading/telemetry';

/** Settings of a proxy to one service. */
export interface UpstreamProxyOptions {
  service: string;
  urls: string[];
  /** Longest wait for a replica's response headers. */
  headersTimeoutMs: number;
  logger: Logger;
  connections?: number;
  /**
   * The secret shared with the services (`upstreams.secret`): the verified principal is forwarded with its proof
   * (see `principalProof`), without which a service takes the request as anonymous.
   */
  principalSecret?: string;
  /**
   * Blob GETs: offer the replica to fetch the object from the store here (OBJECT_FETCH_HEADER). A replica that does
   * not redirect clients then answers with a presigned URL, and the object's bytes go from the store through this
   * process to the client, not through the replica too. When the store cannot be reached from here (or refuses), the
   * replica is asked again without the offer and streams the blob itself; no offer is made for a minute after.
   */
  fetchObjects?: boolean;
}

/** How long the gateway stops offering to fetch objects after a fetch from the store failed. */
const OBJECT_FETCH_BACKOFF_MS = 60_000;

/** A replica's whole answer to a request without a body (`UpstreamProxy.exchange`). */
export interface UpstreamAnswer {
  statusCode: number;
  /** Its headers, hop-by-hop ones left out. */
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/** A proxy handler plus a way to close its pools. */
export interface UpstreamProxy {
  /** Works on bare node objects (the pull fast path) as well as express's. */
  handler: RawHandler;
  /**
   * Sends a request without a body on behalf of the client request `req` (its headers forwarded as `handler` forwards
   * them, `extra` set over them) and reads the whole answer; a replica that cannot be reached is skipped as by
   * `handler`. Rejects with UNAVAILABLE when no replica answers.
   */
  exchange(req: IncomingMessage, method: 'GET' | 'HEAD', path: string, extra?: Record<string, string>): Promise<UpstreamAnswer>;
  /** Checks that at least one replica answers /readyz. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Headers not forwarded to a replica. `expect`: node's server has already answered a client's `Expect: 100-continue`
 * (curl sends it with every large upload), and undici refuses a request that carries it, so a push sent straight to a
 * gateway failed with 503 (nginx answers it itself and never forwarded it).
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect']);
const RETRYABLE = new Set(['ECONNREFUSED', 'UND_ERR_SOCKET', 'ECONNRESET', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH']);
/** Failures before a replica took any of the request (it could not be reached at all). */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH']);

/**
 * Trace context headers: undici's instrumentation injects the gateway's own (its client span's, or the client's
 * context passed through when tracing is off), so an inbound copy is dropped whenever a span context is active
 * (a second `traceparent` would make the replica's parent ambiguous); kept otherwise.
 */
const TRACE_HEADERS = new Set(['traceparent', 'tracestate', 'baggage']);

function forwardHeaders(headers: IncomingHttpHeaders, remoteAddress: string | undefined, principalSecret: string | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const active = trace.getSpanContext(context.active());
  const injected = active !== undefined && trace.isSpanContextValid(active);
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || (injected && TRACE_HEADERS.has(name))) continue;
    out[name] = value;
  }
  const forwarded = headers['x-forwarded-for'];
  out['x-forwarded-for'] = [forwarded, remoteAddress].filter(Boolean).join(', ');
  // The gateway admitted the request (dropping any principal or proof the client sent) and its authorization set the
  // principal; the request id is the one the gateway settled on at admission.
  const principal = headers[PRINCIPAL_HEADER];
  const requestId = headers[REQUEST_ID_HEADER];
  delete out[PRINCIPAL_PROOF_HEADER];
  delete out[OBJECT_FETCH_HEADER];
  if (principalSecret && typeof principal === 'string' && principal !== '' && typeof requestId === 'string') {
    const groups = headers[PRINCIPAL_GROUPS_HEADER];
    out[PRINCIPAL_PROOF_HEADER] = principalProof(principalSecret, requestId, principal, typeof groups === 'string' ? groups : '');
  }
  return out;
}

/** How much of a client's request body the gateway reads ahead of the replica taking it. */
const REQUEST_BODY_AHEAD = 1024 * 1024;

/**
 * The client's request body as undici gets it: a stream of its own that starts reading the request only when undici
 * first pulls (once connected). A failed attempt destroys this stream, never the request itself, which stays
 * readable: untouched (another replica may take it) or to be drained, so that its unread bytes cannot stall the
 * client's connection.
 */
class RequestBody extends Readable {
  started = false;

  constructor(private readonly req: IncomingMessage) {
    // A megabyte ahead (nginx forwards bodies in 1 MiB writes): with the default 64 KiB, one chunk filled it, so the
    // client's socket was paused and resumed (a pair of epoll changes) for every chunk of a push.
    super({ highWaterMark: REQUEST_BODY_AHEAD });
  }

  private readonly onData = (chunk: Buffer) => {
    if (!this.push(chunk)) this.req.pause();
  };
  private readonly onEnd = () => this.push(null);
  private stopWatching: () => void = () => undefined;

  override _read(): void {
    if (!this.started) {
      this.started = true;
      this.req.on('data', this.onData).once('end', this.onEnd);
      // The client went away mid-body: the upstream request must fail, not wait.
      this.stopWatching = finished(this.req, { writable: false }, (err) => {
        if (err) this.destroy(err);
      });
    }
    this.req.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.req.off('data', this.onData).off('end', this.onEnd);
    this.stopWatching();
    callback(err);
  }
}

/**
 * Streams a replica's response body to the client with backpressure, settling when the client has it all. Not
 * `stream.pipeline`: that makes an AbortController per call and aborts it when done, and the abort's DOMException
 * (with its stack trace) cost about a tenth of the gateway's CPU per proxied manifest GET.
 */
export function relayBody(body: Readable, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      body.off('error', onBodyError);
      res.off('finish', onFinish).off('close', onClose).off('error', onClose);
      if (!err) return resolve();
      body.unpipe(res);
      body.destroy();
      res.destroy();
      reject(err);
    };
    const onBodyError = (err: Error) => settle(err);
    const onFinish = () => settle();
    // The client went away (or its socket failed) before it had the whole body.
    const onClose = () => settle(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    body.once('error', onBodyError);
    res.once('finish', onFinish).once('close', onClose).once('error', onClose);
    body.pipe(res);
  });
}

/** Creates a proxy to one service's replicas. */
export function createUpstreamProxy(options: UpstreamProxyOptions): UpstreamProxy {
  if (options.urls.length === 0) throw new Error(`no upstream URLs configured for the ${options.service} service`);
  const { Agent, Pool } = loadUndici();
  const pools = options.urls.map(
    (url) =>
      new Pool(url, {
        connections: options.connections ?? 64,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: options.headersTimeoutMs,
        bodyTimeout: 0,
        connectTimeout: 2_000,
      }),
  );
  let next = 0;
  /** Where objects are fetched from the store (`fetchObjects`): keep-alive connections to any origin a URL names. */
  const objects = options.fetchObjects
    ? new Agent({ connections: options.connections ?? 64, keepAliveTimeout: 30_000, headersTimeout: options.headersTimeoutMs, bodyTimeout: 0, connectTimeout: 2_000 })
    : null;
  let objectFetchOffUntil = 0;

  /**
   * Answers the client with the object at `location` (a presigned URL) under the replica's headers for it; false,
   * having sent nothing, when the store does not serve it from here.
   */
  async function relayObject(location: string, answer: Record<string, string | string[] | undefined>, res: ServerResponse): Promise<boolean> {
    let object: Awaited<ReturnType<Agent['request']>>;
    try {
      const url = new URL(location);
      object = await objects!.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method: 'GET' });
    } catch (err) {
      objectFetchOffUntil = Date.now() + OBJECT_FETCH_BACKOFF_MS;
      options.logger.warn({ err, service: options.service }, 'the object store cannot be reached from the gateway; blob replicas stream blobs for a minute');
      return false;
    }
    if (object.statusCode !== 200) {
      await object.body.dump().catch(() => undefined);
      objectFetchOffUntil = Date.now() + OBJECT_FETCH_BACKOFF_MS;
      options.logger.warn({ status: object.statusCode, service: options.service }, 'the object store refused a presigned GET from the gateway; blob replicas stream blobs for a minute');
      return false;
    }
    res.statusCode = 200;
    const head = headOf(res);
    if (head) for (let i = 0; i < head.length; i += 2) res.setHeader(head[i], head[i + 1]);
    for (const [name, value] of Object.entries(answer)) {
      if (value === undefined || HOP_BY_HOP.has(name) || name === 'location' || name === 'content-length' || name === OBJECT_FETCH_HEADER) continue;
      res.setHeader(name, value);
    }
    const length = object.headers['content-length'];
    if (length !== undefined) res.setHeader('content-length', length);
    await relayBody(object.body, res);
    return true;
  }

  const handler: RawHandler = async (req, res, nextHandler) => {
    // The URL as the client sent it (express may have rewritten req.url for a mounted router; the gateway rewrites both).
    const path = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const replayable = req.headers['content-length'] === undefined || req.headers['content-length'] === '0' ? req.headers['transfer-encoding'] === undefined : false;
    const headers = forwardHeaders(req.headers, req.socket.remoteAddress, options.principalSecret);
    let fetching = objects !== null && req.method === 'GET' && Date.now() >= objectFetchOffUntil;
    if (fetching) headers[OBJECT_FETCH_HEADER] = '1';
    const start = next++ % pools.length;
    let lastError: unknown;
    let body: RequestBody | undefined;
    for (let attempt = 0; attempt < pools.length; attempt++) {
      const pool = pools[(start + attempt) % pools.length];
      body = replayable ? undefined : new RequestBody(req);
      try {
        const upstream = await pool.request({
          path,
          method: req.method as 'GET',
          headers,
          body,
          reset: false,
        });
        if (fetching && upstream.statusCode === 307 && upstream.headers[OBJECT_FETCH_HEADER] === '1' && typeof upstream.headers.location === 'string') {
          await upstream.body.dump();
          if (replayable) req.resume();
          if (await relayObject(upstream.headers.location, upstream.headers, res)) return;
          // The store does not serve it from here: the same replica again, without the offer, streams the blob itself.
          fetching = false;
          delete headers[OBJECT_FETCH_HEADER];
          attempt--;
          continue;
        }
        res.statusCode = upstream.statusCode;
        const head = headOf(res);
        if (head) for (let i = 0; i < head.length; i += 2) res.setHeader(head[i], head[i + 1]);
        for (const [name, value] of Object.entries(upstream.headers)) {
          if (value === undefined || HOP_BY_HOP.has(name)) continue;
          res.setHeader(name, value);
        }
        if (replayable) req.resume();
        await relayBody(upstream.body, res);
        // The replica answered before taking all of the body (an early error): drop the rest, as below.
        if (body && !req.complete && !req.destroyed) {
          body.destroy();
          req.resume();
        }
        return;
      } catch (err) {
        lastError = err;
        if (res.headersSent) {
          options.logger.warn({ err, service: options.service }, 'upstream response broke off');
          res.destroy();
          return;
        }
        const code = (err as { code?: string })?.code ?? '';
        if (!RETRYABLE.has(code)) break;
        // A request with a body goes to another replica only if this one never took any of it.
        if (body?.started || (!replayable && !CONNECT_FAILURES.has(code))) break;
      }
    }
    options.logger.warn({ err: lastError, service: options.service }, 'no replica of the service answered');
    // Read and drop what the client still sends of the body: left unread, it would stall the connection, and the
    // client's next request on it would hang.
    if (!replayable && !req.destroyed) req.resume();
    nextHandler(new OciError('UNAVAILABLE', `the ${options.service} service is unavailable`));
  };

  async function exchange(req: IncomingMessage, method: 'GET' | 'HEAD', path: string, extra?: Record<string, string>): Promise<UpstreamAnswer> {
    const headers = forwardHeaders(req.headers, req.socket.remoteAddress, options.principalSecret);
    if (extra) Object.assign(headers, extra);
    const start = next++ % pools.length;
    let lastError: unknown;
    for (let attempt = 0; attempt < pools.length; attempt++) {
      try {
        const upstream = await pools[(start + attempt) % pools.length].request({ path, method, headers, reset: false });
        const chunks: Buffer[] = [];
        for await (const chunk of upstream.body) chunks.push(chunk as Buffer);
        const kept: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(upstream.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
        return { statusCode: upstream.statusCode, headers: kept, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) };
      } catch (err) {
        lastError = err;
        if (!RETRYABLE.has((err as { code?: string })?.code ?? '')) break;
      }
    }
    options.logger.warn({ err: lastError, service: options.service }, 'no replica of the service answered');
    throw new OciError('UNAVAILABLE', `the ${options.service} service is unavailable`);
  }

  return {
    handler,
    exchange,
    async ready() {
      const results = await Promise.allSettled(pools.map((pool) => pool.request({ path: '/readyz', method: 'GET' }).then(async (r) => {
        await r.body.dump();
        if (r.statusCode !== 200) throw new Error(`readyz answered ${r.statusCode}`);
      })));
      if (!results.some((r) => r.status === 'fulfilled')) throw new Error(`no replica of the ${options.service} service is ready`);
    },
    async close() {
      await Promise.all([...pools.map((pool) => pool.close()), objects?.close()]);
    },
  };
}
