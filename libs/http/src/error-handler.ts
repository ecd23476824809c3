/**
 * The one place errors become HTTP responses: OciErrors render as the OCI envelope with their status; anything
 * else is logged and answered as a bare UNKNOWN (or UNAVAILABLE when a dependency is down), never with a stack.
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorRequestHandler, Express } from 'express';
import { ERROR_CODES, OciError, isUnavailable, toErrorEnvelope } from '@lading/oci';
import { headOf } from './dispatch-locals';
import { type Logger, markOciError } from '@lading/telemetry';

/**
 * Writes an OciError as the response (or ends the socket if headers already went out). Works on a bare node
 * response as well as express's, so that the pull fast path answers errors exactly as the express path does.
 * It never throws: a header value node refuses (a request value copied into it) is dropped, and if rendering fails
 * anyway the answer is a fixed JSON 500 (see `sendLastResort`), never express's HTML page.
 */
export function sendOciError(res: ServerResponse, err: OciError, method = 'GET'): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  try {
    renderOciError(res, err, method);
  } catch {
    sendLastResort(res);
  }
}

function renderOciError(res: ServerResponse, err: OciError, method: string): void {
  // Headers set for the answer the handler was preparing (a 206's Content-Length, say) do not describe the error.
  for (const name of STALE_HEADERS) res.removeHeader(name);
  const head = headOf(res);
  if (head) for (let i = 0; i < head.length; i += 2) setValidHeader(res, head[i], head[i + 1]);
  for (const [name, value] of Object.entries(err.headers)) setValidHeader(res, name, value);
  res.statusCode = err.status;
  if (err.status >= 400) markOciError(res, err.code);
  if (method === 'HEAD' || err.status === 304) {
    res.end();
    return;
  }
  const body = JSON.stringify(toErrorEnvelope(err));
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', String(Buffer.byteLength(body)));
  res.end(body);
}

/** Sets a header unless node would refuse its name or value (CR, LF, NUL, characters beyond Latin-1): then drops it. */
function setValidHeader(res: ServerResponse, name: string, value: string): void {
  try {
    validateHeaderName(name);
    validateHeaderValue(name, value);
  } catch {
    return;
  }
  res.setHeader(name, value);
}

/** The answer when rendering an error failed: fixed bytes that cannot fail to render. */
const LAST_RESORT_BODY = Buffer.from(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: ERROR_CODES.UNKNOWN.message, detail: null }] }));

/** Answers a fixed JSON 500 with no other header (or ends the socket when even that cannot be written). */
export function sendLastResort(res: ServerResponse): void {
  try {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.writeHead(500, { 'Content-Type': 'application/json', 'Content-Length': String(LAST_RESORT_BODY.length) });
    res.end(LAST_RESORT_BODY);
  } catch {
    res.destroy();
  }
}

const STALE_HEADERS = ['Content-Length', 'Content-Range', 'Content-Type', 'ETag', 'Docker-Content-Digest', 'Accept-Ranges', 'Cache-Control', 'Location'];

/** Socket errors of a dependency reached over the network (an adapter that knows better marks its errors). */
const CONNECTION_FAILURES = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH']);

/** True when `err` means a dependency cannot serve right now: marked so by its adapter, or a failed connection. */
function isDependencyFailure(err: unknown): boolean {
  if (isUnavailable(err)) return true;
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && CONNECTION_FAILURES.has(code);
}

/** Maps a thrown value to the OciError the client should see. */
export function toOciError(err: unknown): OciError {
  if (err instanceof OciError) return err;
  const e = err as { type?: string; status?: number; expose?: boolean };
  // body-parser style errors (too large, aborted) carry a 4xx status.
  if (e?.type === 'entity.too.large') return new OciError('SIZE_INVALID', 'request body too large', undefined, { status: 413 });
  if (e?.type === 'request.aborted') return new OciError('BLOB_UPLOAD_INVALID', 'request aborted');
  // A JSON body that does not parse, or in a charset/encoding we do not read, is the client's mistake.
  if (e?.type === 'entity.parse.failed') return new OciError('UNSUPPORTED', 'the request body is not valid JSON', undefined, { status: 400 });
  if (e?.type === 'charset.unsupported' || e?.type === 'encoding.unsupported') {
    return new OciError('UNSUPPORTED', 'the request body is in an unsupported charset or encoding', undefined, { status: 415 });
  }
  // A client error raised by express's router or body-parser (a route parameter such as `%FF` that does not
  // decode, too many form fields): their 4xx status is the truth, their message not ours to repeat.
  const status = (e as { statusCode?: unknown })?.statusCode ?? e?.status;
  if ((err instanceof URIError || e?.expose === true) && typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 413) return new OciError('SIZE_INVALID', 'request too large', undefined, { status });
    return new OciError('UNSUPPORTED', 'the request is malformed', undefined, { status });
  }
  if (isDependencyFailure(err)) return new OciError('UNAVAILABLE', 'a dependency of the registry is unavailable');
  return new OciError('UNKNOWN');
}

/** Answers a failed request with its OCI error, logging what is the registry's fault (5xx). Never throws. */
export function answerError(req: IncomingMessage, res: ServerResponse, err: unknown, logger: Logger): void {
  try {
    const oci = toOciError(err);
    if (oci.status >= 500) logger.error({ err, method: req.method, url: req.url }, 'request failed');
    sendOciError(res, oci, req.method);
  } catch {
    sendLastResort(res);
  }
}

/** Express error middleware for every service. */
export function createErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => answerError(req, res, err, logger);
}

type ExpressHandle = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

/**
 * Makes what would reach express's default final handler (its HTML error page, with a stack outside production)
 * answer in the OCI envelope instead: an error as `answerError` renders it, a request nothing answered as
 * NOT_FOUND. An app mounted in another (called with a `next`) keeps handing both to its parent.
 */
export function withJsonFinalHandler(app: Express, logger: Logger): Express {
  const holder = app as unknown as { handle: ExpressHandle };
  const handle = holder.handle.bind(app);
  holder.handle = (req, res, next) => {
    handle(req, res, next ?? ((err?: unknown) => answerError(req, res, err ?? new OciError('NOT_FOUND'), logger)));
  };
  return app;
}

/** What node's HTTP parser refuses, as the status and OCI error the client is told. */
function clientErrorAnswer(code: string | undefined): { status: number; code: 'SIZE_INVALID' | 'UNSUPPORTED'; message: string } {
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, code: 'SIZE_INVALID', message: 'the request head is too large' };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, code: 'UNSUPPORTED', message: 'the request head did not arrive in time' };
  return { status: 400, code: 'UNSUPPORTED', message: 'the request is not valid HTTP' };
}

/**
 * The server's `clientError` listener: a request node's parser refuses before any handler sees it (a head past
 * `limits.maxHeaderBytes`, a malformed request line, a head that never completes) is answered in the OCI envelope
 * too, where node would write a bare status line. The connection is closed either way.
 */
export function answerClientError(err: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex): void {
  // A reset connection cannot be answered; one with a response under way must not get a second.
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const answer = clientErrorAnswer(err.code);
  const body = JSON.stringify({ errors: [{ code: answer.code, message: answer.message, detail: null }] });
  // The answer to a HEAD has no body (when the request line got through, the method is known).
  const head = err.rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
  socket.end(
    `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${head ? '' : body}`,
  );
}
