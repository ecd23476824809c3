/**
 * An HTTP relay on loopback in front of a real upstream registry, for the pull-through specs and benchmarks: it passes every
 * request through untouched and counts them, and on demand misbehaves the ways real upstreams do: it answers 429
 * with Retry-After (rate limiting), or corrupts the bytes of one blob while keeping its length (a broken mirror or
 * a disk gone bad upstream). The registry behind it is real; only the damage is made here.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running relay. */
export interface UpstreamRelay {
  /** Its base URL, what the proxy's configuration names as the upstream. */
  url: string;
  /** Requests relayed (or refused) so far, as `METHOD path`. */
  readonly requests: string[];
  /** Answers every request with 429 and `Retry-After: <seconds>` until `rateLimit(null)`. */
  rateLimit(seconds: number | null): void;
  /** Flips one byte of this blob's body on every GET until `corrupt(null)`. */
  corrupt(digest: string | null): void;
  /** Breaks off this blob's body after its first chunk (the upstream dying mid-blob) until `cut(null)`. */
  cut(digest: string | null): void;
  /**
   * Holds this blob's body after its first chunk (an upstream that is slow, so that a fetch is caught in the middle)
   * until `stall(null)`, which lets the held bodies go on.
   */
  stall(digest: string | null): void;
  close(): Promise<void>;
}

/** Starts a relay to `target` (http://host:port) on 127.0.0.1. */
export async function startUpstreamRelay(target: string): Promise<UpstreamRelay> {
  const to = new URL(target);
  const requests: string[] = [];
  let limitSeconds: number | null = null;
  let corrupted: string | null = null;
  let cutOff: string | null = null;
  let stalled: string | null = null;
  const held: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (limitSeconds !== null) {
      req.resume();
      res.writeHead(429, { 'Retry-After': String(limitSeconds), 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
      return;
    }
    const headers = { ...req.headers, host: to.host };
    const forward = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      const isBlob = (digest: string | null) => digest !== null && req.method === 'GET' && req.url?.endsWith(`/blobs/${digest}`);
      const damage = isBlob(corrupted);
      const breakOff = isBlob(cutOff);
      const hold = isBlob(stalled);
      let first = true;
      answer.on('data', (chunk: Buffer) => {
        if (hold && !first && stalled !== null) {
          answer.pause();
          held.push(() => answer.resume());
        }
        if (breakOff && !first) {
          answer.destroy();
          res.destroy();
          return;
        }
        if (damage && first && chunk.length > 0) {
          chunk = Buffer.from(chunk);
          chunk[0] ^= 0xff;
        }
        first = false;
        res.write(chunk);
      });
      answer.on('end', () => res.end());
      answer.on('error', () => res.destroy());
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    rateLimit: (seconds) => void (limitSeconds = seconds),
    corrupt: (digest) => void (corrupted = digest),
    cut: (digest) => void (cutOff = digest),
    stall: (digest) => {
      stalled = digest;
      if (digest === null) for (const resume of held.splice(0)) resume();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
