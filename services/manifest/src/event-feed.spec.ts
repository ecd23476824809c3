import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type TestDeps, createTestDeps } from '@lading/testing';
import { createManifestService } from './manifest-service';

/** Opens `/api/v1/events` and resolves with the status and a promise of everything the stream sent until it ended. */
function openFeed(url: string): Promise<{ status: number; ended: Promise<string> }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/api/v1/events`, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        resolve({ status: res.statusCode ?? 0, ended: new Promise((done) => res.on('end', () => done(text))) });
      })
      .on('error', reject);
  });
}

describe('the live feed of the manifest service', () => {
  let deps: TestDeps;
  let server: http.Server;
  let url: string;
  const stopping = new AbortController();

  beforeAll(async () => {
    deps = await createTestDeps({ console: { heartbeat: '100ms' } });
    const app = createManifestService({ db: deps.db, config: deps.config, logger: deps.logger, events: deps.events, feed: deps.bus, stopping: stopping.signal });
    server = http.createServer(app as http.RequestListener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await deps.close();
  });

  it('ends every open stream when the process shuts down, closes its connection, and refuses new streams with 503', async () => {
    const feed = await openFeed(url);
    expect(feed.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 250));
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    stopping.abort();
    const text = await feed.ended;
    expect(text.startsWith('retry: 3000\n\n')).toBe(true);
    expect(text).toContain(': heartbeat\n\n');
    // Nothing else holds the server: it closes without closeAllConnections.
    await closed;
    server = http.createServer(createManifestService({ db: deps.db, config: deps.config, logger: deps.logger, events: deps.events, feed: deps.bus, stopping: stopping.signal }) as http.RequestListener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const refused = await openFeed(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    expect(refused.status).toBe(503);
  });
});
