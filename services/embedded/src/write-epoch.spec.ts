/** The write epoch (write-epoch.ts): what bumps it, seen through a real HTTP server and a worker's view of it. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { HttpApp } from '@lading/http';
import { createWriteEpoch, readEpoch } from './write-epoch';

describe('the write epoch read workers check their caches against', () => {
  const epoch = createWriteEpoch();
  const now = readEpoch(epoch.buffer);
  /** The epoch each request saw while its handler ran (after the arrival bump, before the answer's). */
  const seenInHandler: number[] = [];
  let server: Server;
  let base: string;

  beforeAll(async () => {
    const app = express();
    app.use((req, res) => {
      seenInHandler.push(now());
      res.status(req.method === 'DELETE' ? 202 : 200).end();
    });
    server = epoch.watch(app as unknown as HttpApp).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('stays put for reads (GET, HEAD)', async () => {
    const before = now();
    for (const method of ['GET', 'HEAD']) expect((await fetch(`${base}/v2/a/manifests/x`, { method })).status).toBe(200);
    expect(now()).toBe(before);
  });

  it('moves when a write arrives and again before its answer is written, so nothing read during it outlives it', async () => {
    for (const method of ['PUT', 'DELETE', 'POST', 'PATCH']) {
      const before = now();
      seenInHandler.length = 0;
      const answer = await fetch(`${base}/v2/a/manifests/x`, { method });
      expect(answer.status).toBeLessThan(300);
      // Bumped on arrival: what the handler saw is newer than anything kept before the write.
      expect(seenInHandler).toEqual([before + 1]);
      // Bumped again before the head: anything kept while the write ran is stale once the client has the answer.
      expect(now()).toBe(before + 2);
    }
  });

  it('moves when bumped directly (the bus heard an event)', () => {
    const before = now();
    epoch.bump();
    expect(now()).toBe(before + 1);
  });
});
