/**
 * The gateway's shared manifest reads, over real HTTP in front of a real manifest service: concurrent reads of one
 * manifest cost the service fewer reads than clients yet every client is answered and counted as a pull, and no
 * client is ever answered from a read sent before its request arrived (deletes and tag moves are seen at once).
 */
import { Readable } from 'node:stream';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as meta from '@lading/metadata';
import { blobKey } from '@lading/storage';
import { TestDeps, TestManifest, createTestDeps, imageManifest, makeBlob } from '@lading/testing';
import { createManifestService } from '@lading/manifest';
import { createGateway } from './gateway';
import { createManifestReads } from './manifest-reads';
import { UpstreamProxy, createUpstreamProxy } from './upstream-proxy';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

describe('shared manifest reads in the gateway', () => {
  let deps: TestDeps;
  let service: http.Server;
  let gateway: http.Server;
  let proxy: UpstreamProxy;
  let url = '';
  /** Requests the manifest service received, by method, for manifest paths. */
  const serviceReads = { GET: 0, HEAD: 0 };
  /** Pulls the service's audit counted. */
  let pulls = 0;

  const listen = async (server: http.Server) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  beforeAll(async () => {
    deps = await createTestDeps();
    const app = createManifestService({ ...deps, pullAudit: { note: (_principal, _repository, count = 1) => void (pulls += count) } });
    service = http.createServer((req, res) => {
      if (req.url?.includes('/manifests/') && (req.method === 'GET' || req.method === 'HEAD')) serviceReads[req.method]++;
      app(req, res);
    });
    proxy = createUpstreamProxy({ service: 'manifest', urls: [await listen(service)], headersTimeoutMs: 10_000, logger: deps.logger });
    const noService = (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.statusCode = 404;
      res.end();
    };
    gateway = http.createServer(
      createGateway({ dispatch: { manifest: createManifestReads({ upstream: proxy, maxBytes: 1 << 20 }), blob: noService, auth: noService }, logger: deps.logger }),
    );
    url = await listen(gateway);
  });

  afterAll(async () => {
    for (const server of [gateway, service]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await proxy.close();
    await deps.close();
  });

  async function image(repository: string): Promise<TestManifest> {
    const config = makeBlob(`{"architecture":"amd64","os":"linux","n":${Math.random()}}`);
    const layer = makeBlob(256);
    for (const blob of [config, layer]) {
      const id = `seed-${Math.random().toString(16).slice(2)}`;
      await deps.store.writeUpload(id, 0, Readable.from([blob.data]));
      await deps.store.commitUpload(id, blobKey(blob.digest), blob.size);
    }
    await deps.db.transaction(async (tx) => {
      const repo = await meta.ensureRepository(tx, repository);
      for (const blob of [config, layer]) {
        await meta.insertBlob(tx, blob.digest, blob.size);
        await meta.linkBlob(tx, repo.id, blob.digest);
      }
    });
    return imageManifest(config, [layer]);
  }

  const put = (repository: string, reference: string, m: TestManifest) =>
    fetch(`${url}/v2/${repository}/manifests/${reference}`, { method: 'PUT', body: m.body, headers: { 'Content-Type': m.mediaType } });
  const get = (repository: string, reference: string, init: RequestInit = {}) =>
    fetch(`${url}/v2/${repository}/manifests/${reference}`, { ...init, headers: { Accept: OCI_MANIFEST, ...(init.headers as Record<string, string>) } });

  it('answers 40 concurrent GETs of one manifest with its bytes from fewer service reads, counting 40 pulls', async () => {
    const m = await image('shared/concurrent');
    expect((await put('shared/concurrent', 'v1', m)).status).toBe(201);
    for (const reference of [m.digest, 'v1']) {
      const before = { ...serviceReads };
      const pullsBefore = pulls;
      const answers = await Promise.all(Array.from({ length: 40 }, () => get('shared/concurrent', reference)));
      for (const res of answers) {
        expect(res.status).toBe(200);
        expect(res.headers.get('docker-content-digest')).toBe(m.digest);
        expect(res.headers.get('content-type')).toBe(OCI_MANIFEST);
        expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
        expect(Buffer.from(await res.arrayBuffer()).equals(m.body)).toBe(true);
      }
      const reads = serviceReads.GET + serviceReads.HEAD - before.GET - before.HEAD;
      expect(reads).toBeGreaterThanOrEqual(1);
      expect(reads).toBeLessThan(40);
      expect(pulls - pullsBefore).toBe(40);
    }
    // Each answer carries its own request id, not the one of the request the shared read was made for.
    const ids = new Set((await Promise.all(Array.from({ length: 5 }, () => get('shared/concurrent', m.digest)))).map((r) => r.headers.get('x-request-id')));
    expect(ids.size).toBe(5);
  });

  it('reads bytes it already holds with a HEAD of the service, and answers a HEAD without a body', async () => {
    const m = await image('shared/head');
    expect((await put('shared/head', 'v1', m)).status).toBe(201);
    expect((await get('shared/head', 'v1')).status).toBe(200);
    const before = { ...serviceReads };
    for (const reference of ['v1', m.digest]) {
      const again = await get('shared/head', reference);
      expect(Buffer.from(await again.arrayBuffer()).equals(m.body)).toBe(true);
    }
    expect(serviceReads.GET - before.GET).toBe(0);
    expect(serviceReads.HEAD - before.HEAD).toBe(2);
    const head = await get('shared/head', 'v1', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(m.body.length));
  });

  it('answers 404 for a manifest deleted after it was read and cached, and a moved tag with its new target', async () => {
    const first = await image('shared/deleted');
    const second = await image('shared/deleted');
    expect((await put('shared/deleted', 'latest', first)).status).toBe(201);
    expect((await get('shared/deleted', 'latest')).headers.get('docker-content-digest')).toBe(first.digest);
    expect((await put('shared/deleted', 'latest', second)).status).toBe(201);
    expect((await get('shared/deleted', 'latest')).headers.get('docker-content-digest')).toBe(second.digest);
    expect((await get('shared/deleted', first.digest)).status).toBe(200);
    expect((await fetch(`${url}/v2/shared/deleted/manifests/${first.digest}`, { method: 'DELETE' })).status).toBe(202);
    const gone = await get('shared/deleted', first.digest);
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('MANIFEST_UNKNOWN');
  });

  it("passes the service's own error through when the Accept header does not admit the manifest", async () => {
    const m = await image('shared/accept');
    expect((await put('shared/accept', 'v1', m)).status).toBe(201);
    const res = await get('shared/accept', 'v1', { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('MANIFEST_UNKNOWN');
    expect((await get('shared/accept', 'v1')).status).toBe(200);
  });

  it('ignores a pull count a client sends itself', async () => {
    const m = await image('shared/forged');
    expect((await put('shared/forged', 'v1', m)).status).toBe(201);
    const before = pulls;
    expect((await get('shared/forged', 'v1', { headers: { 'X-Lading-Pulls': '5000' } })).status).toBe(200);
    expect(pulls - before).toBe(1);
  });
});
