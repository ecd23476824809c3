/**
 * The one place errors become HTTP responses: OciErrors render as the OCI envelope with their status; anything
 * else is logged and answered as a bare UNKNOWN (or UNAVAILABLE when a dependency is down), never with a stack.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler } from 'express';
import { DATABASE_UNAVAILABLE } from '@lading/metadata';
import { OciError, toErrorEnvelope } from '@lading/oci';
import { STORAGE_UNAVAILABLE } from '@lading/storage';
import { headOf } from './dispatch-locals';
import { type Logger, markOciError } from '@lading/telemetry';

/**
 * Writes an OciError as the response (or ends the socket if headers already went out). Works on a bare node
 * response as well as express's, so that the pull fast path answers errors exactly as the express path does.
 */
export function sendOciError(res: ServerResponse, err: OciError, method = 'GET'): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // Headers set for the answer the handler was preparing (a 206's Content-Length, say) do not describe the error.
  for (const name of STALE_HEADERS) res.removeHeader(name);
  const head = headOf(res);
  if (head) for (let i = 0; i < head.length; i += 2) res.setHeader(head[i], head[i + 1]);
  for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
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

const STALE_HEADERS = ['Content-Length', 'Content-Range', 'Content-Type', 'ETag', 'Docker-Content-Digest', 'Accept-Ranges', 'Cache-Control', 'Location'];

const DEPENDENCY_FAILURES = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', DATABASE_UNAVAILABLE, STORAGE_UNAVAILABLE]);

function isDependencyFailure(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && DEPENDENCY_FAILURES.has(code);
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
  if (isDependencyFailure(err)) return new OciError('UNAVAILABLE', 'a dependency of the registry is unavailable');
  return new OciError('UNKNOWN');
}

/** Answers a failed request with its OCI error, logging what is the registry's fault (5xx). */
export function answerError(req: IncomingMessage, res: ServerResponse, err: unknown, logger: Logger): void {
  const oci = toOciError(err);
  if (oci.status >= 500) logger.error({ err, method: req.method, url: req.url }, 'request failed');
  sendOciError(res, oci, req.method);
}

/** Express error middleware for every service. */
export function createErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => answerError(req, res, err, logger);
}
