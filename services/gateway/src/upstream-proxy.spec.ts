import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { relayBody } from './upstream-proxy';

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
