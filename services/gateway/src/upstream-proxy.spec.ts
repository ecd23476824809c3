import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { OBJECT_FETCH_HEADER } from '@lading/http';
import { createLogger } from '@lading/telemetry';
import { createUpstreamProxy, relayBody } from './upstream-proxy';

/** A server whose one response is handed to `answer`; resolves to its URL. */
async function serve(answer: (res: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => answer(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

function get(url: string): Promise<{ status: number; body: Buffer; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      const chunks: Buffer[] = [];
      let aborted = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('aborted', () => (aborted = true));
      res.on('error', () => (aborted = true));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), aborted: aborted || !res.complete }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('relayBody', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  it('relays the whole body, with backpressure, and settles when the client has it', async () => {
    const payload = Buffer.alloc(8 << 20, 7);
    let relayed: Promise<void> | undefined;
    const { url, server } = await serve((res) => {
      res.statusCode = 200;
      relayed = relayBody(Readable.from([payload.subarray(0, 1 << 20), payload.subarray(1 << 20)]), res);
    });
    servers.push(server);
    const got = await get(url);
    await expect(relayed).resolves.toBeUndefined();
    expect(got.status).toBe(200);
    expect(got.body.equals(payload)).toBe(true);
  });

  it('rejects and cuts the client off when the replica body fails mid-way', async () => {
    let relayed: Promise<void> | undefined;
    const { url, server } = await serve((res) => {
      const body = new PassThrough();
      res.statusCode = 200;
      relayed = relayBody(body, res);
      relayed.catch(() => undefined);
      body.write('partial');
      setTimeout(() => body.destroy(Object.assign(new Error('socket hang up'), { code: 'UND_ERR_SOCKET' })), 20);
    });
    servers.push(server);
    const got = await get(url);
    await expect(relayed).rejects.toMatchObject({ code: 'UND_ERR_SOCKET' });
    expect(got.aborted).toBe(true);
  });

  it('rejects and destroys the replica body when the client goes away first', async () => {
    const body = new PassThrough();
    let relayed: Promise<void> | undefined;
    const { url, server } = await serve((res) => {
      res.statusCode = 200;
      relayed = relayBody(body, res);
      relayed.catch(() => undefined);
      body.write('first part');
    });
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      const req = request(url, (res) => res.once('data', () => { req.destroy(); resolve(); }));
      req.on('error', () => undefined);
      req.on('close', () => resolve());
      req.end();
      setTimeout(() => reject(new Error('no data')), 2000);
    });
    await expect(relayed).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(body.destroyed).toBe(true);
  });
});

describe('blob GETs fetched from the store by the gateway (fetchObjects)', () => {
  const servers: Server[] = [];
  const logger = createLogger({ service: 'test', level: 'silent' });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** A blob replica that offers the object at `location` when asked to, and streams `blob` itself otherwise. */
  async function replica(blob: Buffer, location: string, offers: string[]): Promise<string> {
    return listen((req, res) => {
      const offered = String(req.headers[OBJECT_FETCH_HEADER] ?? '');
      offers.push(offered);
      const headers = { 'Docker-Content-Digest': 'sha256:abc', ETag: '"sha256:abc"', 'Content-Type': 'application/octet-stream' };
      if (offered === '1') {
        res.writeHead(307, { ...headers, [OBJECT_FETCH_HEADER]: '1', Location: location, 'Content-Length': '0' });
        res.end();
        return;
      }
      res.writeHead(200, { ...headers, 'Content-Length': String(blob.length) });
      res.end(blob);
    });
  }

  async function gatewayOver(replicaUrl: string): Promise<{ url: string; close: () => Promise<void> }> {
    const proxy = createUpstreamProxy({ service: 'blob', urls: [replicaUrl], headersTimeoutMs: 5_000, logger, fetchObjects: true });
    const url = await listen((req, res) => void proxy.handler(req, res, (err) => {
      res.statusCode = 599;
      res.end(String(err));
    }));
    return { url, close: () => proxy.close() };
  }

  function fetchAll(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = request(url, { headers: { [OBJECT_FETCH_HEADER]: '0' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it("answers with the store's bytes under the replica's headers, the presigned URL never reaching the client", async () => {
    const blob = randomBytes(3 << 20);
    const store = await listen((req, res) => {
      res.writeHead(req.url === '/bucket/key?X-Amz-Signature=s' ? 200 : 403, { 'Content-Length': String(blob.length) });
      res.end(blob);
    });
    const offers: string[] = [];
    const gateway = await gatewayOver(await replica(blob, `${store}/bucket/key?X-Amz-Signature=s`, offers));
    const got = await fetchAll(`${gateway.url}/v2/r/blobs/sha256:abc`);
    await gateway.close();
    expect(offers).toEqual(['1']); // the client's own header was replaced by the gateway's offer
    expect(got.status).toBe(200);
    expect(got.body.equals(blob)).toBe(true);
    expect(got.headers['docker-content-digest']).toBe('sha256:abc');
    expect(got.headers['content-length']).toBe(String(blob.length));
    expect(got.headers.location).toBeUndefined();
    expect(got.headers[OBJECT_FETCH_HEADER]).toBeUndefined();
  });

  it('asks the replica again without the offer when the store cannot be reached, and makes no offer for a while', async () => {
    const blob = randomBytes(1000);
    const closed = await listen(() => undefined);
    await new Promise((r) => servers.pop()!.close(r)); // a port nothing listens on any more
    const offers: string[] = [];
    const gateway = await gatewayOver(await replica(blob, `${closed}/bucket/key`, offers));
    const first = await fetchAll(`${gateway.url}/v2/r/blobs/sha256:abc`);
    const second = await fetchAll(`${gateway.url}/v2/r/blobs/sha256:abc`);
    await gateway.close();
    expect(offers).toEqual(['1', '', '']);
    for (const got of [first, second]) {
      expect(got.status).toBe(200);
      expect(got.body.equals(blob)).toBe(true);
    }
  });
});

describe('request bodies forwarded to a replica', () => {
  const logger = createLogger({ service: 'test', level: 'silent' });

  it("forwards an upload sent with Expect: 100-continue (curl's large uploads) byte for byte, not a 503", async () => {
    const received: Array<{ expect: unknown; bytes: Buffer }> = [];
    const upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ expect: req.headers.expect, bytes: Buffer.concat(chunks) });
        res.writeHead(201, { 'Content-Length': '0' });
        res.end();
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const proxy = createUpstreamProxy({ service: 'blob', urls: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`], headersTimeoutMs: 5_000, logger });
    const gateway = createServer((req, res) => void proxy.handler(req, res, (err) => {
      res.statusCode = 599;
      res.end(String(err));
    }));
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    try {
      const body = randomBytes(3 * 1024 * 1024 + 17);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(`http://127.0.0.1:${(gateway.address() as AddressInfo).port}/v2/a/blobs/uploads/x`, {
          method: 'PUT',
          headers: { Expect: '100-continue', 'Content-Length': String(body.length) },
        }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('continue', () => req.end(body));
        req.on('error', reject);
        req.flushHeaders();
      });
      expect(status).toBe(201);
      expect(received).toHaveLength(1);
      expect(received[0].expect).toBeUndefined();
      expect(received[0].bytes.equals(body)).toBe(true);
    } finally {
      await proxy.close();
      await Promise.all([gateway, upstream].map((s) => new Promise((r) => s.close(r))));
    }
  });
});
