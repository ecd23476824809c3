/**
 * The gateway's abuse limits, on a real HTTP server built the way every process builds its own (createHttpServer):
 * rate limits per address and per principal (429 TOOMANYREQUESTS with Retry-After), the largest request head, the
 * time to send it, request bodies that go silent, and memory that stays bounded under thousands of idle connections.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '@lading/config';
import { PRINCIPAL_HEADER, RawHandler } from '@lading/http';
import { createHttpServer } from '@lading/runtime';
import { createLogger } from '@lading/telemetry';
import { GatewayDeps, createGateway } from './gateway';
import { rateLimiterFromConfig } from './rate-limiter';

const logger = createLogger({ service: 'test', level: 'silent' });

/** A service that answers every request 200 once it has read the whole body. */
const okService: RawHandler = (req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'Content-Length': '2' });
    res.end('ok');
  });
};

async function serve(deps: Partial<GatewayDeps>, limits: Record<string, unknown> = {}): Promise<{ server: http.Server; port: number }> {
  const config = parseConfig({ limits });
  const app = createGateway({ dispatch: { manifest: okService, blob: okService, auth: okService }, logger, ...deps });
  const server = createHttpServer(app, config.limits);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

async function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

const MANIFEST = '/v2/team/app/manifests/v1';

describe('gateway limits', () => {
  it('answers an address past its rate with 429 TOOMANYREQUESTS and Retry-After, on the fast and the express path', async () => {
    let now = 1_000_000;
    const limiter = rateLimiterFromConfig(parseConfig({ limits: { addressRate: 1, addressBurst: 3 } }), () => now);
    const { server, port } = await serve({ limiter });
    try {
      const base = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 3; i++) expect((await fetch(`${base}${MANIFEST}`)).status).toBe(200);
      const refused = await fetch(`${base}${MANIFEST}`);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('1');
      const body = (await refused.json()) as { errors: Array<{ code: string }> };
      expect(body.errors[0].code).toBe('TOOMANYREQUESTS');
      // An upload (the express path) is refused the same way, and its body does not stall the connection.
      const upload = await fetch(`${base}/v2/team/app/blobs/uploads/`, { method: 'POST', body: 'x'.repeat(10_000) });
      expect(upload.status).toBe(429);
      expect(upload.headers.get('retry-after')).toBe('1');
      now += 1000;
      expect((await fetch(`${base}${MANIFEST}`)).status).toBe(200);
      expect((await fetch(`${base}${MANIFEST}`)).status).toBe(429);
      // Health probes from the load balancer are never limited.
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    } finally {
      await close(server);
    }
  });

  it('limits each principal on its own once its token is verified', async () => {
    let now = 5_000_000;
    const limiter = rateLimiterFromConfig(parseConfig({ limits: { principalRate: 0.5, principalBurst: 2 } }), () => now);
    const authorize: GatewayDeps['authorize'] = async (req) => {
      req.headers[PRINCIPAL_HEADER] = String(req.headers['x-test-user']);
    };
    const { server, port } = await serve({ limiter, authorize });
    try {
      const as = (user: string) => fetch(`http://127.0.0.1:${port}${MANIFEST}`, { headers: { 'x-test-user': user } });
      expect([(await as('alice')).status, (await as('alice')).status]).toEqual([200, 200]);
      const refused = await as('alice');
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('2');
      expect((await as('bob')).status).toBe(200);
      // Anonymous callers (a token naming nobody) do not share one bucket: the address limit is theirs.
      for (let i = 0; i < 5; i++) expect((await as('')).status).toBe(200);
      now += 2000;
      expect((await as('alice')).status).toBe(200);
    } finally {
      await close(server);
    }
  });

  it('refuses a request head larger than limits.maxHeaderBytes with 431, in the OCI envelope', async () => {
    const { server, port } = await serve({}, { maxHeaderBytes: 4096 });
    try {
      const res = await fetch(`http://127.0.0.1:${port}${MANIFEST}`, { headers: { 'x-padding': 'p'.repeat(8192) } });
      expect(res.status).toBe(431);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('SIZE_INVALID');
      // A 64 KiB path is refused the same way, not with node's bare status line.
      const long = await rawExchange(port, `GET /v2/${'a'.repeat(64 * 1024)}/tags/list HTTP/1.1\r\nHost: x\r\n\r\n`, 5000);
      expect(long.data).toMatch(/^HTTP\/1\.1 431 [^]*\r\nContent-Type: application\/json\r\n[^]*"code":"SIZE_INVALID"/);
      const malformed = await rawExchange(port, `GET /v2/ HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n`, 5000);
      expect(malformed.data).toMatch(/^HTTP\/1\.1 400 [^]*"errors":\[\{"code":"UNSUPPORTED"/);
      expect((await fetch(`http://127.0.0.1:${port}${MANIFEST}`, { headers: { 'x-padding': 'p'.repeat(1024) } })).status).toBe(200);
    } finally {
      await close(server);
    }
  });

  /** Opens a raw connection, sends `head`, and resolves with what the server sent before closing it, and when. */
  function rawExchange(port: number, head: string, timeoutMs: number): Promise<{ data: string; closedAfterMs: number | null }> {
    return new Promise((resolve) => {
      const started = Date.now();
      const socket = net.connect(port, '127.0.0.1', () => socket.write(head));
      let data = '';
      socket.on('data', (d) => (data += d));
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ data, closedAfterMs: null });
      }, timeoutMs);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ data, closedAfterMs: Date.now() - started });
      });
      socket.on('error', () => undefined);
    });
  }

  it('closes a connection whose request head does not arrive within limits.headersTimeout', async () => {
    const { server, port } = await serve({}, { headersTimeout: '1s' });
    try {
      const { data, closedAfterMs } = await rawExchange(port, `GET ${MANIFEST} HTTP/1.1\r\nHost: x\r\n`, 6000);
      expect(closedAfterMs).not.toBeNull();
      expect(data).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      await close(server);
    }
  });

  it('cuts an upload whose body goes silent for limits.bodyIdleTimeout, and not a body that keeps coming', async () => {
    const { server, port } = await serve({}, { bodyIdleTimeout: '500ms' });
    try {
      const head = `PATCH /v2/team/app/blobs/uploads/0190a0b0-0000-7000-8000-000000000000 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n`;
      const silent = await rawExchange(port, `${head}${'x'.repeat(10)}`, 5000);
      expect(silent.closedAfterMs).not.toBeNull();
      expect(silent.data).toBe('');
      // A slow body whose bytes keep arriving (every 200 ms) is not cut, however long it takes.
      const slow = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write(head));
        let sent = 0;
        let data = '';
        const drip = setInterval(() => {
          socket.write('y'.repeat(100));
          sent += 100;
          if (sent >= 1000) clearInterval(drip);
        }, 200);
        socket.on('data', (d) => {
          data += d;
          if (data.includes('\r\n\r\nok')) {
            socket.destroy();
            resolve(data);
          }
        });
        socket.on('close', () => reject(new Error(`closed before the answer: ${data}`)));
      });
      expect(slow).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      await close(server);
    }
  });

  it('keeps memory bounded with 5,000 idle keep-alive connections open, and still answers', async () => {
    const { server, port } = await serve({});
    const sockets: net.Socket[] = [];
    try {
      global.gc?.();
      const before = process.memoryUsage().rss;
      for (let batch = 0; batch < 50; batch++) {
        await Promise.all(
          Array.from({ length: 100 }, () => new Promise<void>((resolve, reject) => {
            const socket = net.connect(port, '127.0.0.1', () => resolve());
            socket.on('error', reject);
            sockets.push(socket);
          })),
        );
      }
      // Half of them have made a request and now idle on keep-alive; the other half never sent a byte.
      await Promise.all(
        sockets.slice(0, 2500).map(
          (socket) =>
            new Promise<void>((resolve) => {
              socket.once('data', () => resolve());
              socket.write(`GET ${MANIFEST} HTTP/1.1\r\nHost: x\r\n\r\n`);
            }),
        ),
      );
      // The kernel completes connections before node accepts them: wait until the server holds all of them.
      const held = () => new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
      for (let i = 0; i < 100 && (await held()) < 5000; i++) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await held()).toBe(5000);
      const grown = process.memoryUsage().rss - before;
      // Both ends of 5,000 connections live in this process; a leak per connection (a buffer, a body) would be
      // hundreds of megabytes. Node's own cost is a few kilobytes per connection.
      expect(grown).toBeLessThan(200 * 1024 * 1024);
      expect((await fetch(`http://127.0.0.1:${port}/v2/`)).status).toBe(200);
    } finally {
      for (const socket of sockets) socket.destroy();
      await close(server);
    }
  }, 60_000);
});
