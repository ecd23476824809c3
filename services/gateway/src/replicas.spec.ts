/**
 * Caches across replicas (distributed mode): two gateways, each in front of its own manifest and blob service
 * process, over one real Postgres, MinIO and Kafka (tools/infra). What gateway 1's replicas cached must not outlive a
 * delete or a tag move made through gateway 2: GET via 1 (cached), DELETE via 2, GET via 1 → 404. The gateways
 * share concurrent manifest reads (manifest-reads.ts): fewer reads of the service than clients, each client
 * answered and counted as a pull.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Client } from 'pg';
import { PULLS_HEADER, RawHandler } from '@lading/http';
import { createLogger } from '@lading/telemetry';
import { freePort, infraSettings } from '@lading/testing';
import { createGateway } from './gateway';
import { UpstreamProxy, createUpstreamProxy } from './upstream-proxy';
import { createManifestReads } from './manifest-reads';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const logger = createLogger({ service: 'test', level: 'silent' });

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;


async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('caches across two gateway replicas over one Postgres', () => {
  const children: ChildProcess[] = [];
  const servers: http.Server[] = [];
  const proxies: UpstreamProxy[] = [];
  const gateways: string[] = [];
  let output = '';
  const databaseName = `lading_replicas_${process.pid}`;
  let adminUrl = '';

  /** Starts one service process and resolves with its URL once it answers /readyz. */
  async function startService(service: 'manifest' | 'blob', env: Record<string, string>): Promise<string> {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services', service, 'src', 'main.ts')], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, LADING_HTTP_ADDR: `127.0.0.1:${port}`, LADING_LOG_LEVEL: 'warn', LADING_LOG_ACCESS: 'false', LADING_GC_ENABLED: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    children.push(child);
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
      if (ready) return url;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${service} did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /** The reads gateway 1 made of its manifest service: method and the pulls each stood for. */
  const exchanges: Array<{ method: string; pulls: number }> = [];

  async function startGateway(manifestUrl: string, blobUrl: string): Promise<string> {
    const proxy = createUpstreamProxy({ service: 'manifest', urls: [manifestUrl], headersTimeoutMs: 10_000, logger });
    const first = servers.length === 0;
    const manifest: Pick<UpstreamProxy, 'handler' | 'exchange'> = {
      handler: proxy.handler,
      exchange: (req, method, target, extra) => {
        if (first) exchanges.push({ method, pulls: Number(extra?.[PULLS_HEADER] ?? 1) });
        return proxy.exchange(req, method, target, extra);
      },
    };
    const blob = createUpstreamProxy({ service: 'blob', urls: [blobUrl], headersTimeoutMs: 10_000, logger });
    proxies.push(proxy, blob);
    const noAuth: RawHandler = (_req, res) => {
      res.statusCode = 404;
      res.end();
    };
    const server = http.createServer(createGateway({ dispatch: { manifest: createManifestReads({ upstream: manifest, maxBytes: 1 << 20 }), blob: blob.handler, auth: noAuth }, logger }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  beforeAll(async () => {
    const infra = infraSettings();
    adminUrl = infra.databaseUrl;
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
    await adminQuery(adminUrl, `CREATE DATABASE ${databaseName}`);
    const url = new URL(infra.databaseUrl);
    url.pathname = `/${databaseName}`;
    const env = { ...infra.env, LADING_MODE: 'distributed', LADING_DATABASE_URL: url.toString() };
    // The first process migrates the fresh database alone; the others find it migrated.
    const manifest1 = await startService('manifest', env);
    const [manifest2, blob1, blob2] = await Promise.all([startService('manifest', env), startService('blob', env), startService('blob', env)]);
    gateways.push(await startGateway(manifest1, blob1), await startGateway(manifest2, blob2));
  }, 180_000);

  afterAll(async () => {
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
    if (adminUrl) await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`).catch(() => undefined);
  }, 60_000);

  async function pushBlob(gateway: string, repository: string, data: Buffer): Promise<string> {
    const digest = sha256(data);
    const res = await fetch(`${gateway}/v2/${repository}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data, headers: { 'Content-Type': 'application/octet-stream' } });
    expect(res.status).toBe(201);
    return digest;
  }

  async function pushImage(gateway: string, repository: string, tag: string): Promise<{ digest: string; layer: string }> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: randomBytes(8).toString('hex') }));
    const layerData = randomBytes(2048);
    const configDigest = await pushBlob(gateway, repository, config);
    const layer = await pushBlob(gateway, repository, layerData);
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: layerData.length }],
    });
    const res = await fetch(`${gateway}/v2/${repository}/manifests/${tag}`, { method: 'PUT', body, headers: { 'Content-Type': OCI_MANIFEST } });
    expect(res.status).toBe(201);
    return { digest: sha256(body), layer };
  }

  const getManifest = (gateway: string, repository: string, reference: string) =>
    fetch(`${gateway}/v2/${repository}/manifests/${reference}`, { headers: { Accept: OCI_MANIFEST } });

  it('answers 404 via replica 1 for a manifest it served (and cached) once replica 2 deleted it', async () => {
    const [one, two] = gateways;
    const image = await pushImage(two, 'replicas/app', 'v1');
    for (let i = 0; i < 3; i++) {
      const byDigest = await getManifest(one, 'replicas/app', image.digest);
      expect(byDigest.status).toBe(200);
      expect(byDigest.headers.get('docker-content-digest')).toBe(image.digest);
      await byDigest.arrayBuffer();
      expect((await getManifest(one, 'replicas/app', 'v1')).headers.get('docker-content-digest')).toBe(image.digest);
    }
    expect((await fetch(`${two}/v2/replicas/app/manifests/${image.digest}`, { method: 'DELETE' })).status).toBe(202);
    const after = await getManifest(one, 'replicas/app', image.digest);
    expect(after.status).toBe(404);
    expect(((await after.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('MANIFEST_UNKNOWN');
    expect((await getManifest(one, 'replicas/app', 'v1')).status).toBe(404);
  });

  it('answers a tag moved via replica 2 with its new target via replica 1 at once', async () => {
    const [one, two] = gateways;
    const first = await pushImage(two, 'replicas/tags', 'latest');
    expect((await getManifest(one, 'replicas/tags', 'latest')).headers.get('docker-content-digest')).toBe(first.digest);
    const second = await pushImage(two, 'replicas/tags', 'latest');
    expect((await getManifest(one, 'replicas/tags', 'latest')).headers.get('docker-content-digest')).toBe(second.digest);
    expect((await fetch(`${two}/v2/replicas/tags/manifests/latest`, { method: 'DELETE' })).status).toBe(202);
    expect((await getManifest(one, 'replicas/tags', 'latest')).status).toBe(404);
  });

  it('answers 40 concurrent GETs of one manifest via replica 1 from fewer reads of its service, counting 40 pulls', async () => {
    const [one, two] = gateways;
    const image = await pushImage(two, 'replicas/shared', 'v1');
    for (const reference of [image.digest, 'v1']) {
      exchanges.length = 0;
      const answers = await Promise.all(Array.from({ length: 40 }, () => getManifest(one, 'replicas/shared', reference)));
      const ids = new Set<string | null>();
      for (const res of answers) {
        expect(res.status).toBe(200);
        expect(res.headers.get('docker-content-digest')).toBe(image.digest);
        expect(res.headers.get('content-type')).toBe(OCI_MANIFEST);
        expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(image.digest);
        ids.add(res.headers.get('x-request-id'));
      }
      // Each answer carries its own request id, not the one of the request the shared read was made for.
      expect(ids.size).toBe(40);
      expect(exchanges.length).toBeGreaterThanOrEqual(1);
      expect(exchanges.length).toBeLessThan(40);
      expect(exchanges.reduce((sum, e) => sum + e.pulls, 0)).toBe(40);
    }
  });

  it('reads a manifest whose bytes replica 1 holds with a HEAD of its service, and answers HEADs without a body', async () => {
    const [one, two] = gateways;
    const image = await pushImage(two, 'replicas/head', 'v1');
    expect((await getManifest(one, 'replicas/head', 'v1')).status).toBe(200);
    exchanges.length = 0;
    for (const reference of ['v1', image.digest]) {
      const again = await getManifest(one, 'replicas/head', reference);
      expect(sha256(Buffer.from(await again.arrayBuffer()))).toBe(image.digest);
    }
    expect(exchanges.map((e) => e.method)).toEqual(['HEAD', 'HEAD']);
    const head = await fetch(`${one}/v2/replicas/head/manifests/v1`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST } });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it("passes the service's own error through via replica 1 when the Accept header does not admit the manifest", async () => {
    const [one, two] = gateways;
    await pushImage(two, 'replicas/accept', 'v1');
    const res = await fetch(`${one}/v2/replicas/accept/manifests/v1`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('MANIFEST_UNKNOWN');
    expect((await getManifest(one, 'replicas/accept', 'v1')).status).toBe(200);
  });

  it('answers 404 via replica 1 for a blob replica 2 deleted after replica 1 served it', async () => {
    const [one, two] = gateways;
    const image = await pushImage(two, 'replicas/blobs', 'v1');
    for (let i = 0; i < 2; i++) {
      const head = await fetch(`${one}/v2/replicas/blobs/blobs/${image.layer}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe('2048');
      const get = await fetch(`${one}/v2/replicas/blobs/blobs/${image.layer}`, { redirect: 'manual' });
      expect(get.status).toBe(307);
    }
    expect((await fetch(`${two}/v2/replicas/blobs/blobs/${image.layer}`, { method: 'DELETE' })).status).toBe(202);
    expect((await fetch(`${one}/v2/replicas/blobs/blobs/${image.layer}`, { method: 'HEAD' })).status).toBe(404);
    const get = await fetch(`${one}/v2/replicas/blobs/blobs/${image.layer}`, { redirect: 'manual' });
    expect(get.status).toBe(404);
    expect(((await get.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('BLOB_UNKNOWN');
  });
});
