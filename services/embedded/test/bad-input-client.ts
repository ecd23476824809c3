/**
 * A raw HTTP client for the bad-input corpus: it sends the path byte for byte (no URL normalisation, so `..`, `//`
 * and `%2F` reach the registry as written) and controls the body framing exactly — an honest Content-Length,
 * a lying one, chunked transfer, or a body that never ends — which supertest cannot do.
 */
import http from 'node:http';

/** How the request body is framed on the wire. */
export type BodyFraming =
  /** `Content-Length` equal to the body (the default). */
  | { kind: 'length' }
  /** `Transfer-Encoding: chunked`, no `Content-Length`; `terminate: false` never sends the last chunk. */
  | { kind: 'chunked'; terminate?: boolean }
  /** `Content-Length: declared`, whatever the body is; the request is never ended (the client keeps waiting). */
  | { kind: 'declared'; declared: number };

/** One request as the corpus describes it. */
export interface WireRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  framing?: BodyFraming;
}

/** What came back. */
export interface WireResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

const BODY_CHUNK = 256 * 1024;

/** Waits until a request can take more body, or is gone; leaves no listener behind (a big body waits many times). */
function drainedOrClosed(outgoing: http.ClientRequest): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      outgoing.off('drain', done).off('close', done);
      resolve();
    };
    outgoing.on('drain', done).on('close', done);
  });
}

/** Sends one request on a fresh connection; resolves with the first response, rejects after `timeoutMs`. */
export function send(port: number, req: WireRequest, timeoutMs = 15_000): Promise<WireResponse> {
  const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body);
  const framing: BodyFraming = req.framing ?? { kind: 'length' };
  const headers: Record<string, string> = { ...(req.headers ?? {}) };
  if (framing.kind === 'length' && body !== undefined) headers['Content-Length'] = String(body.length);
  if (framing.kind === 'chunked') headers['Transfer-Encoding'] = 'chunked';
  if (framing.kind === 'declared') headers['Content-Length'] = String(framing.declared);

  return new Promise<WireResponse>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, res?: WireResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(res!);
      // A request whose body was refused early (or never ends) is abandoned here.
      outgoing.destroy();
    };
    const outgoing = http.request({ host: '127.0.0.1', port, method: req.method, path: req.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const data = Buffer.concat(chunks);
        finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: data, text: data.toString('utf8') });
      });
      res.on('error', (err) => finish(err));
    });
    const timer = setTimeout(() => finish(new Error(`no response within ${timeoutMs} ms (the registry hangs)`)), timeoutMs);
    // Once the response is in, write errors (the registry closing a refused upload) are expected; before, they fail.
    outgoing.on('error', (err) => finish(err));

    const writeAll = async (): Promise<void> => {
      if (body !== undefined) {
        for (let offset = 0; offset < body.length && !settled; offset += BODY_CHUNK) {
          const piece = body.subarray(offset, offset + BODY_CHUNK);
          if (!outgoing.write(piece)) await drainedOrClosed(outgoing);
        }
      }
      if (settled) return;
      if (framing.kind === 'declared') return;
      if (framing.kind === 'chunked' && framing.terminate === false) return;
      outgoing.end();
    };
    writeAll().catch((err: Error) => finish(err));
  });
}
