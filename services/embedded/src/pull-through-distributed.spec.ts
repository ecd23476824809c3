/**
 * The pull-through cache in the distributed mode: the real processes (services/{blob,manifest,gateway,gc}/src/main.ts),
 * two blob replicas and two manifest replicas over one real Postgres (a database of this test's own), MinIO and Kafka
 * (tools/infra), with the gateway in front. The upstream is CNCF Distribution v3 behind a relay that counts its
 * requests and can hold a blob's body in the middle. Single flight holds across the replicas (one upstream GET
 * however many replicas miss at once), a replica that dies mid-fetch is taken over once its lease expires, a cold
 * pull by tag and the mirror work through the distributed gateway, and the gc process evicts after `evictAfter`.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { type RegistryClient, createRegistryClient } from '@lading/client';
import {
  type RunningDistribution,
  type TestBlob,
  type TestManifest,
  type ThrowawayDatabase,
  type UpstreamRelay,
  createThrowawayDatabase,
  freePort,
  imageManifest,
  infraSettings,
  makeBlob,
  startDistribution,
  startUpstreamRelay,
} from '@lading/testing';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One process of the distributed mode, started from its main.ts. */
interface Running {
  url: string;
  /** Where it serves its Prometheus metrics. */
  metricsUrl: string;
  child: ChildProcess;
}

describe('pull-through cache in the distributed mode', () => {
  const running: Running[] = [];
  let output = '';
  let dir: string;
  let database: ThrowawayDatabase;
  let sql: pg.Client;
  let distribution: RunningDistribution;
  let relay: UpstreamRelay;
  let upstream: RegistryClient;
  let env: Record<string, string>;
  let blobs: string[];
  let manifests: string[];
  let gateway: string;

  /** Starts `services/<service>/src/main.ts` on `port` and resolves once `probe` answers 200. */
  async function start(service: 'blob' | 'manifest' | 'gateway' | 'gc', port: number, probe = '/readyz', extra: Record<string, string> = {}): Promise<Running> {
    const metricsPort = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services', service, 'src', 'main.ts')], {
      cwd: REPO_ROOT,
      env: { ...env, ...extra, LADING_HTTP_ADDR: `127.0.0.1:${port}`, LADING_TELEMETRY_METRICSADDR: `127.0.0.1:${metricsPort}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const proc = { url: `http://127.0.0.1:${port}`, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`, child };
    running.push(proc);
    const deadline = Date.now() + 90_000;
    for (;;) {
      if ((await fetch(`${proc.url}${probe}`).then((r) => r.status, () => 0)) === 200) return proc;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${service} did not start:\n${output}`);
      await sleep(250);
    }
  }

  async function stop(proc: Running, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
    proc.child.kill(signal);
    await exited;
  }

  /** Pushes an image (config and layers, then the manifest) into the upstream Distribution. */
  async function pushUpstream(repository: string, tag: string, layers: TestBlob[]): Promise<{ manifest: TestManifest; config: TestBlob }> {
    const config = makeBlob(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, repository }));
    for (const blob of [config, ...layers]) await upstream.pushBlobStream(repository, blob.digest, blob.size, blob.data);
    const manifest = imageManifest(config, layers);
    expect((await upstream.putManifest(repository, tag, { mediaType: manifest.mediaType, body: manifest.body })).status).toBe(201);
    return { manifest, config };
  }

  /** How many times the relay passed a GET of this blob on to the upstream. */
  const upstreamGets = (repository: string, digest: string) => relay.requests.filter((r) => r === `GET /v2/${repository}/blobs/${digest}`).length;

  /** GETs a blob from a service or the gateway; resolves with the status and the digest of the bytes received. */
  async function getBlob(base: string, repository: string, digest: string): Promise<{ status: number; digest: string }> {
    const res = await fetch(`${base}/v2/${repository}/blobs/${digest}`);
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, digest: sha256(body) };
  }

  /** The blob pulls a blob replica counted with `result` in `lading_proxy_requests_total`. */
  async function blobPulls(base: string, result: string): Promise<number> {
    const proc = running.find((p) => p.url === base)!;
    const text = await (await fetch(proc.metricsUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith('lading_proxy_requests_total{') && l.includes('kind="blob"') && l.includes(`result="${result}"`));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  const leaseOf = async (key: string) => (await sql.query<{ holder: string }>(`SELECT holder FROM proxy_fetch_leases WHERE key = $1`, [key])).rows[0] ?? null;
  const blobRows = async (digest: string) => Number((await sql.query<{ n: string }>(`SELECT count(*) AS n FROM blobs WHERE digest = $1`, [digest])).rows[0].n);

  beforeAll(async () => {
    const infra = infraSettings();
    dir = await mkdtemp(path.join(tmpdir(), 'lading-proxy-distributed-'));
    database = await createThrowawayDatabase('proxydist');
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    distribution = await startDistribution();
    relay = await startUpstreamRelay(distribution.url);
    upstream = createRegistryClient({ url: distribution.url, timeoutMs: 20_000 });
    const configFile = path.join(dir, 'lading.yaml');
    await writeFile(
      configFile,
      [
        `proxies:`,
        `  - namespace: hub`,
        `    upstream: ${relay.url}`,
        // A second cache of the same upstream whose content is evicted a second after its last pull.
        `  - namespace: evicting`,
        `    upstream: ${relay.url}`,
        `    evictAfter: 1s`,
        `mirror:`,
        `  namespace: hub`,
        `gc:`,
        `  pollInterval: 1s`,
        `  sweepInterval: 1s`,
        '',
      ].join('\n'),
    );
    const [blob1, blob2, manifest1, manifest2, gw] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    blobs = [`http://127.0.0.1:${blob1}`, `http://127.0.0.1:${blob2}`];
    manifests = [`http://127.0.0.1:${manifest1}`, `http://127.0.0.1:${manifest2}`];
    const base: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('LADING_') && value !== undefined) base[key] = value;
    env = {
      ...base,
      ...infra.env,
      LADING_CONFIG: configFile,
      LADING_MODE: 'distributed',
      LADING_DATABASE_URL: database.url,
      LADING_LOG_LEVEL: 'warn',
      LADING_LOG_ACCESS: 'false',
      LADING_GC_ENABLED: 'false',
      LADING_UPSTREAMS_BLOB: blobs.join(','),
      LADING_UPSTREAMS_MANIFEST: manifests.join(','),
      // Auth is off: the gateway never asks the auth service, but its route table needs somewhere to send /token.
      LADING_UPSTREAMS_AUTH: 'http://127.0.0.1:9',
    };
    // The first process migrates the fresh database alone; the others find it migrated.
    await start('manifest', manifest1);
    await Promise.all([start('manifest', manifest2), start('blob', blob1), start('blob', blob2)]);
    gateway = (await start('gateway', gw, '/v2/')).url;
  }, 240_000);

  afterAll(async () => {
    await Promise.all(running.map((proc) => stop(proc)));
    await upstream?.close();
    await relay?.close();
    await distribution?.remove();
    await sql?.end();
    await database?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('asks the upstream once for 20 concurrent GETs of one missing blob spread across both replicas, and every client gets its bytes', async () => {
    const layer = makeBlob(4 * 1024 * 1024);
    await pushUpstream('lib/one', 'v1', [layer]);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => getBlob(blobs[i % 2], 'hub/lib/one', layer.digest)));
    expect(answers).toEqual(Array.from({ length: 20 }, () => ({ status: 200, digest: layer.digest })));
    expect(upstreamGets('lib/one', layer.digest)).toBe(1);
    expect(await leaseOf(`hub/lib/one@${layer.digest}`)).toBeNull();
    // One miss between the replicas; every other pull waited for it (or, arriving after it, was a hit).
    const counted = async (result: string) => (await blobPulls(blobs[0], result)) + (await blobPulls(blobs[1], result));
    expect(await counted('miss')).toBe(1);
    expect((await counted('wait')) + (await counted('hit'))).toBe(19);
  });

  it('asks the upstream once for 20 concurrent GETs of one missing tag spread across both manifest replicas', async () => {
    const layer = makeBlob(200_000);
    const { manifest, config } = await pushUpstream('lib/tagged', 'v1', [layer]);
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const res = await fetch(`${manifests[i % 2]}/v2/hub/lib/tagged/manifests/v1`, { headers: { Accept: manifest.mediaType } });
        return { status: res.status, digest: sha256(Buffer.from(await res.arrayBuffer())) };
      }),
    );
    expect(answers).toEqual(Array.from({ length: 20 }, () => ({ status: 200, digest: manifest.digest })));
    expect(relay.requests.filter((r) => r === 'GET /v2/lib/tagged/manifests/v1')).toHaveLength(1);
    // Layers are lazy: none is asked of the upstream until a client asks for it.
    for (const blob of [config, layer]) expect(upstreamGets('lib/tagged', blob.digest)).toBe(0);
    expect(await leaseOf('hub/lib/tagged:v1')).toBeNull();
  });

  it('pulls an image by tag through the distributed gateway cold: the manifest, its config and layers, each fetched once', async () => {
    const layers = [makeBlob(300_000), makeBlob(70_000)];
    const { manifest, config } = await pushUpstream('lib/cold', 'v1', layers);
    const client = createRegistryClient({ url: gateway, timeoutMs: 20_000 });
    try {
      const pulled = await client.readManifest('hub/lib/cold', 'v1');
      expect(sha256(pulled.bytes)).toBe(manifest.digest);
      for (const blob of [config, ...layers]) {
        expect(await getBlob(gateway, 'hub/lib/cold', blob.digest)).toEqual({ status: 200, digest: blob.digest });
        expect(upstreamGets('lib/cold', blob.digest)).toBe(1);
      }
    } finally {
      await client.close();
    }
  });

  it('answers un-prefixed pulls from the mirror namespace through the distributed gateway, and a local name stays local', async () => {
    const layer = makeBlob(50_000);
    const { manifest } = await pushUpstream('lib/mirrored', 'v1', [layer]);
    const client = createRegistryClient({ url: gateway, timeoutMs: 20_000 });
    try {
      const mirrored = await client.readManifest('lib/mirrored', 'v1');
      expect(sha256(mirrored.bytes)).toBe(manifest.digest);
      expect(await getBlob(gateway, 'lib/mirrored', layer.digest)).toEqual({ status: 200, digest: layer.digest });
      // Stored under the mirror namespace, as a pull of hub/lib/mirrored would have.
      expect(await getBlob(blobs[0], 'hub/lib/mirrored', layer.digest)).toEqual({ status: 200, digest: layer.digest });

      const mine = makeBlob(40_000);
      const config = makeBlob('{"local":true}');
      const local = imageManifest(config, [mine]);
      expect((await client.pushImage('mine/app', 'v1', { mediaType: local.mediaType, body: local.body }, [config, mine])).status).toBe(201);
      const served = await client.readManifest('mine/app', 'v1');
      expect(sha256(served.bytes)).toBe(local.digest);
      expect(relay.requests.filter((r) => r.includes('mine/app'))).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('serves a proxy rule stored through the admin API in every blob and manifest replica without a restart, and stops when it is removed', async () => {
    const layer = makeBlob(50_000);
    const { manifest } = await pushUpstream('lib/stored', 'v1', [layer]);
    // Before the rule exists, the namespace is an ordinary one that holds nothing.
    expect((await fetch(`${gateway}/v2/later/lib/stored/manifests/v1`, { headers: { Accept: manifest.mediaType } })).status).toBe(404);
    // The row the admin API writes (services/auth proxy-admin; no auth process runs here).
    await sql.query('INSERT INTO proxy_rules (namespace, upstream, tag_ttl) VALUES ($1, $2, $3)', ['later', relay.url, '10m']);
    // Every process reads the stored rules on a 5 s poll: each replica answers once it has.
    const pulledEverywhere = async () => {
      for (const base of [...manifests, gateway]) {
        const res = await fetch(`${base}/v2/later/lib/stored/manifests/v1`, { headers: { Accept: manifest.mediaType } });
        if (res.status !== 200) return false;
      }
      return (await Promise.all(blobs.map((base) => getBlob(base, 'later/lib/stored', layer.digest)))).every((r) => r.status === 200 && r.digest === layer.digest);
    };
    const deadline = Date.now() + 20_000;
    while (!(await pulledEverywhere())) {
      if (Date.now() > deadline) throw new Error('the stored rule did not reach every replica within 20 s');
      await sleep(250);
    }
    // Removed: pushes into the namespace are accepted again (a rule refuses them), in every blob replica.
    await sql.query('DELETE FROM proxy_rules WHERE namespace = $1', ['later']);
    const pushAccepted = async () => {
      for (const base of blobs) {
        const res = await fetch(`${base}/v2/later/lib/pushed/blobs/uploads/`, { method: 'POST' });
        if (res.status !== 202) return false;
      }
      return true;
    };
    const until = Date.now() + 20_000;
    while (!(await pushAccepted())) {
      if (Date.now() > until) throw new Error('the removed rule still refused pushes after 20 s');
      await sleep(250);
    }
  }, 60_000);

  it('takes over the fetch of a replica that died mid-blob once its lease expires: nothing partial is stored, and the next pulls succeed', async () => {
    const layer = makeBlob(2 * 1024 * 1024);
    await pushUpstream('lib/orphan', 'v1', [layer]);
    const key = `hub/lib/orphan@${layer.digest}`;
    const doomed = await start('blob', await freePort());
    relay.stall(layer.digest);
    const first = fetch(`${doomed.url}/v2/hub/lib/orphan/blobs/${layer.digest}`).then((r) => r.arrayBuffer()).catch(() => null);
    // The doomed replica holds the lease and is in the middle of the body when it dies.
    while (!((await leaseOf(key)) && upstreamGets('lib/orphan', layer.digest) === 1)) await sleep(50);
    await stop(doomed, 'SIGKILL');
    expect(await first).toBeNull();
    relay.stall(null);
    expect(await leaseOf(key)).not.toBeNull();
    expect(await blobRows(layer.digest)).toBe(0);

    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => getBlob(blobs[i % 2], 'hub/lib/orphan', layer.digest)));
    expect(answers).toEqual(Array.from({ length: 10 }, () => ({ status: 200, digest: layer.digest })));
    expect(upstreamGets('lib/orphan', layer.digest)).toBe(2);
    expect(await blobRows(layer.digest)).toBe(1);
    expect(await leaseOf(key)).toBeNull();
  });

  it("evicts a cache's image not pulled for evictAfter with the gc process of the distributed mode, and fetches it again on the next pull", async () => {
    const { manifest } = await pushUpstream('lib/evicted', 'v1', [makeBlob(20_000)]);
    const client = createRegistryClient({ url: gateway, timeoutMs: 20_000 });
    try {
      expect(sha256((await client.readManifest('evicting/lib/evicted', 'v1')).bytes)).toBe(manifest.digest);
      const held = async () => Number((await sql.query<{ n: string }>(`SELECT count(*) AS n FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.name = 'evicting/lib/evicted'`)).rows[0].n);
      expect(await held()).toBe(1);
      await start('gc', await freePort(), '/readyz', { LADING_GC_ENABLED: 'true' });
      const deadline = Date.now() + 60_000;
      while ((await held()) > 0) {
        if (Date.now() > deadline) throw new Error(`the gc process did not evict evicting/lib/evicted:\n${output}`);
        await sleep(200);
      }
      expect(sha256((await client.readManifest('evicting/lib/evicted', 'v1')).bytes)).toBe(manifest.digest);
      expect(relay.requests.filter((r) => r === 'GET /v2/lib/evicted/manifests/v1')).toHaveLength(2);
    } finally {
      await client.close();
    }
  });
});
