import { truncate } from 'node:fs/promises';
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import request from 'supertest';
import { blobKey } from '@lading/storage';
import { TestDeps, createTestDeps, descriptorsOn, makeBlob } from '@lading/testing';
import { createBlobService } from './blob-service';

async function eventually(check: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

const MiB = 1024 * 1024;

describe('blob GET streamed from the filesystem over a real socket', () => {
  let deps: TestDeps;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    deps = await createTestDeps();
    server = createServer(createBlobService(deps));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await deps.close();
  });

  async function push(repo: string, size: number) {
    const blob = makeBlob(size);
    await request(server).post(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`).set('Content-Type', 'application/octet-stream').send(blob.data).expect(201);
    return { ...blob, file: path.join(deps.storageRoot, 'blobs', blobKey(blob.digest)) };
  }

  /** Starts a GET and resolves with the response once its headers arrived. */
  function open(url: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => get(url, { headers }, resolve).on('error', reject));
  }

  it('serves a blob of several read buffers byte for byte, whole and by a range across buffer boundaries', async () => {
    const blob = await push('big/whole', 3 * MiB + 123);
    const whole = await fetch(`${base}/v2/big/whole/blobs/${blob.digest}`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-length')).toBe(String(blob.size));
    expect(Buffer.from(await whole.arrayBuffer()).equals(blob.data)).toBe(true);

    const [start, end] = [MiB - 7, 2 * MiB + 9];
    const part = await fetch(`${base}/v2/big/whole/blobs/${blob.digest}`, { headers: { Range: `bytes=${start}-${end}` } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes ${start}-${end}/${blob.size}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(blob.data.subarray(start, end + 1))).toBe(true);
    expect(await eventually(() => descriptorsOn(blob.file) === 0)).toBe(true);
  });

  it('closes the blob file when the client disconnects mid-download', async () => {
    // Larger than what loopback socket buffers hold, so the server is still sending when the client leaves.
    const blob = await push('big/abort', 48 * MiB);
    const res = await open(`${base}/v2/big/abort/blobs/${blob.digest}`);
    expect(res.statusCode).toBe(200);
    res.pause();
    expect(await eventually(() => descriptorsOn(blob.file) === 1)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Still open: the server is blocked on a full socket, not finished.
    expect(descriptorsOn(blob.file)).toBe(1);
    res.destroy();
    expect(await eventually(() => descriptorsOn(blob.file) === 0)).toBe(true);
    // The service keeps serving.
    const again = await fetch(`${base}/v2/big/abort/blobs/${blob.digest}`, { headers: { Range: 'bytes=0-9' } });
    expect(Buffer.from(await again.arrayBuffer()).equals(blob.data.subarray(0, 10))).toBe(true);
  });

  it('cuts the response short, not pads or hangs it, when the blob file ends mid-stream', async () => {
    const blob = await push('big/short', 4 * MiB);
    await truncate(blob.file, 2 * MiB + 1);
    const res = await open(`${base}/v2/big/short/blobs/${blob.digest}`);
    expect(res.statusCode).toBe(200);
    let received = 0;
    const outcome = await new Promise<string>((resolve) => {
      res.on('data', (chunk: Buffer) => (received += chunk.length));
      res.on('end', () => resolve('ended'));
      res.on('aborted', () => resolve('aborted'));
      res.on('error', () => resolve('aborted'));
    });
    expect(outcome).toBe('aborted');
    expect(received).toBeLessThan(blob.size);
    expect(await eventually(() => descriptorsOn(blob.file) === 0)).toBe(true);
  });
});
