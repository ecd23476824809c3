/**
 * Read workers (read-workers.ts): one worker thread beside the main thread of a real embedded registry (PGlite, the
 * filesystem store, auth on), both listening on one port with `reusePort`. Every read goes out on a connection of
 * its own, so the kernel spreads them over both threads; each check asserts that the worker served some of them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { type IncomingHttpHeaders, type Server, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AUDIT_EVENT_TYPES } from '@lading/events';
import { parseConfig } from '@lading/config';
import { createHttpServer } from '@lading/runtime';
import { createLogger } from '@lading/telemetry';
import { type TestBlob, imageManifest, makeBlob } from '@lading/testing';
import { type EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';
import { type ReadWorkers, ensurePortFree, planReadWorkers, startReadWorkers, usableCores, withPrincipalSecret } from './read-workers';
import { createWriteEpoch } from './write-epoch';

const ROOT = { user: 'root', password: 'root-password-0' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
/** Reads per check: with two listeners, all of them landing on one thread has odds of 2^-(READS-1). */
const READS = 24;
const SLOW_MACHINE_TIMEOUT_MS = 120_000;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

describe('read workers of the embedded process', () => {
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  let workers: ReadWorkers;
  let port: number;
  /** The token service (`auth.service`). */
  let service: string;
  /** Requests the main thread's own listener served. */
  let mainServed = 0;
  const restarted: number[] = [];
  const fatal: Error[] = [];

  /** One request on a connection of its own (closed after), so that the kernel picks a listener for it. */
  function send(method: string, target: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path: target, headers: { ...headers, connection: 'close', ...(body ? { 'content-length': String(body.length) } : {}) }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async function workerServed(): Promise<number> {
    return (await workers.served()).reduce((a, b) => a + b, 0);
  }

  /** `count` times the same request, each on its own connection; resolves with the answers and the worker's share. */
  async function spread(count: number, method: string, target: string, headers: Record<string, string> = {}): Promise<{ answers: Answer[]; byWorker: number; byMain: number }> {
    const [workerBefore, mainBefore] = [await workerServed(), mainServed];
    const answers: Answer[] = [];
    for (let i = 0; i < count; i++) answers.push(await send(method, target, headers));
    return { answers, byWorker: (await workerServed()) - workerBefore, byMain: mainServed - mainBefore };
  }

  async function token(scope: string, user = ROOT.user, password = ROOT.password): Promise<string> {
    const answer = await send('GET', `/token?service=${encodeURIComponent(service)}&scope=${encodeURIComponent(scope)}`, { authorization: basic(user, password) });
    expect(answer.status).toBe(200);
    return (JSON.parse(answer.body.toString()) as { token: string }).token;
  }

  async function push(repository: string, tag: string, seed: string): Promise<{ digest: string; layer: TestBlob }> {
    const config = makeBlob(`{"seed":"${seed}","config":true}`);
    const layer = makeBlob(`layer ${seed} `.repeat(2000));
    const manifest = imageManifest(config, [layer]);
    const bearer = { authorization: `Bearer ${await token(`repository:${repository}:pull,push`)}` };
    for (const blob of [config, layer]) {
      const put = await send('POST', `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, { ...bearer, 'content-type': 'application/octet-stream' }, blob.data);
      expect([put.status, put.body.toString()]).toEqual([201, '']);
    }
    const put = await send('PUT', `/v2/${repository}/manifests/${tag}`, { ...bearer, 'content-type': manifest.mediaType }, manifest.body);
    expect(put.status).toBe(201);
    return { digest: manifest.digest, layer };
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-read-workers-'));
    const config = withPrincipalSecret(
      parseConfig({
        data: { dir },
        auth: { enabled: true },
        admin: ROOT,
        audit: { enabled: true, pullWindow: '1h' },
        server: { readWorkers: 1 },
        log: { level: 'silent', access: false },
      }),
    );
    expect(planReadWorkers(config)).toEqual({ count: 1, max: 1 });
    service = config.auth.service;
    const logger = createLogger({ service: 'test', level: 'silent' });
    registry = await createEmbeddedRegistry(config, logger);
    const epoch = createWriteEpoch();
    server = createHttpServer(epoch.watch(registry.app), config.limits);
    server.on('request', () => mainServed++);
    await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', reusePort: true }, resolve));
    port = (server.address() as AddressInfo).port;
    workers = await startReadWorkers({
      config,
      logger,
      registry,
      epoch,
      count: 1,
      host: '127.0.0.1',
      port,
      onRestarted: (index) => restarted.push(index),
      onFatal: (err) => fatal.push(err),
    });
  }, SLOW_MACHINE_TIMEOUT_MS);

  afterAll(async () => {
    await workers?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await registry?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves reads on the shared port from both threads: each answers /v2/ and manifest and blob GETs', async () => {
    const { digest, layer } = await push('team/app', 'v1', 'both');
    const bearer = { authorization: `Bearer ${await token('repository:team/app:pull')}` };
    const base = await spread(READS, 'GET', '/v2/', bearer);
    const manifests = await spread(READS, 'GET', `/v2/team/app/manifests/${digest}`, { ...bearer, accept: 'application/vnd.oci.image.manifest.v1+json' });
    const blobs = await spread(READS, 'GET', `/v2/team/app/blobs/${layer.digest}`, bearer);
    for (const run of [base, manifests, blobs]) {
      expect(run.answers.filter((a) => a.status !== 200).map((a) => a.body.toString())).toEqual([]);
      expect(run.byWorker).toBeGreaterThan(0);
      expect(run.byMain).toBeGreaterThan(0);
      expect(run.byWorker + run.byMain).toBe(READS);
    }
    expect(new Set(manifests.answers.map((a) => a.headers['docker-content-digest']))).toEqual(new Set([digest]));
    expect(blobs.answers.every((a) => a.body.equals(layer.data))).toBe(true);
    expect(new Set(blobs.answers.map((a) => JSON.stringify([a.headers['content-length'], a.headers['docker-content-digest'], a.headers.etag, a.headers['content-type']])))).toEqual(
      new Set([JSON.stringify([String(layer.size), layer.digest, `"${layer.digest}"`, 'application/octet-stream'])]),
    );
  }, SLOW_MACHINE_TIMEOUT_MS);

  it('reads a tag pushed on one connection as the new digest on every other, whichever thread serves them', async () => {
    const bearer = { authorization: `Bearer ${await token('repository:team/moving:pull')}` };
    const first = await push('team/moving', 'latest', 'first');
    const before = await spread(READS, 'GET', '/v2/team/moving/manifests/latest', { ...bearer, accept: 'application/vnd.oci.image.manifest.v1+json' });
    expect(new Set(before.answers.map((a) => a.headers['docker-content-digest']))).toEqual(new Set([first.digest]));
    const second = await push('team/moving', 'latest', 'second');
    const after = await spread(READS, 'GET', '/v2/team/moving/manifests/latest', { ...bearer, accept: 'application/vnd.oci.image.manifest.v1+json' });
    expect(after.byWorker).toBeGreaterThan(0);
    expect(new Set(after.answers.map((a) => a.headers['docker-content-digest']))).toEqual(new Set([second.digest]));
  }, SLOW_MACHINE_TIMEOUT_MS);

  it('never serves a deleted manifest from a worker, though the worker held its bytes', async () => {
    const { digest } = await push('team/gone', 'v1', 'gone');
    const reader = { authorization: `Bearer ${await token('repository:team/gone:pull')}`, accept: 'application/vnd.oci.image.manifest.v1+json' };
    const warm = await spread(READS, 'GET', `/v2/team/gone/manifests/${digest}`, reader);
    expect(warm.byWorker).toBeGreaterThan(0);
    const deleted = await send('DELETE', `/v2/team/gone/manifests/${digest}`, { authorization: `Bearer ${await token('repository:team/gone:delete')}` });
    expect(deleted.status).toBe(202);
    for (const method of ['GET', 'HEAD']) {
      const after = await spread(READS, method, `/v2/team/gone/manifests/${digest}`, reader);
      expect(after.byWorker).toBeGreaterThan(0);
      expect(after.answers.map((a) => a.status)).toEqual(Array(READS).fill(404));
    }
  }, SLOW_MACHINE_TIMEOUT_MS);

  it('refuses as the main thread does: the same status, challenge and body from either thread', async () => {
    const { digest } = await push('team/private', 'v1', 'private');
    const cases: Array<[string, Record<string, string>]> = [
      ['/v2/', {}],
      [`/v2/team/private/manifests/${digest}`, {}],
      [`/v2/team/private/manifests/${digest}`, { authorization: 'Bearer not.a.token' }],
      [`/v2/team/private/manifests/${digest}`, { authorization: `Bearer ${await token('repository:other/app:pull')}` }],
      [`/v2/team/private/blobs/${digest}`, { authorization: basic(ROOT.user, 'wrong-password') }],
    ];
    for (const [target, headers] of cases) {
      const run = await spread(READS, 'GET', target, headers);
      expect(run.byWorker).toBeGreaterThan(0);
      expect(run.byMain).toBeGreaterThan(0);
      const seen = new Set(run.answers.map((a) => JSON.stringify([a.status, a.headers['www-authenticate'], a.headers['content-type'], a.body.toString()])));
      expect({ target, answers: seen.size }).toEqual({ target, answers: 1 });
      expect(run.answers[0].status).toBe(401);
    }
  }, SLOW_MACHINE_TIMEOUT_MS);

  it('counts every pull a worker answers in the audit trail, exactly', async () => {
    const { digest } = await push('team/counted', 'v1', 'counted');
    await registry.flushPullAudit();
    const reader = { authorization: `Bearer ${await token('repository:team/counted:pull')}`, accept: 'application/vnd.oci.image.manifest.v1+json' };
    const run = await spread(READS, 'GET', `/v2/team/counted/manifests/${digest}`, reader);
    expect(run.byWorker).toBeGreaterThan(0);
    await workers.flushPulls();
    await registry.flushPullAudit();
    const rows = await registry.db.query<{ record: unknown }>(`SELECT record FROM audit_log WHERE type = $1 AND repository = 'team/counted'`, [AUDIT_EVENT_TYPES.pulls]);
    const counts = rows.rows.map((r) => (typeof r.record === 'string' ? JSON.parse(r.record) : r.record) as { count: number });
    expect(counts.reduce((sum, r) => sum + r.count, 0)).toBe(READS);
  }, SLOW_MACHINE_TIMEOUT_MS);

  it('starts a worker that crashed again, which then serves', async () => {
    const [crashed] = workers.threads();
    const back = new Promise<void>((resolve) => {
      const poll = () => (restarted.length > 0 ? resolve() : setTimeout(poll, 20));
      poll();
    });
    await crashed.terminate();
    await back;
    expect(restarted).toEqual([0]);
    expect(fatal).toEqual([]);
    expect(workers.threads()).toHaveLength(1);
    expect(workers.threads()[0]).not.toBe(crashed);
    const run = await spread(READS, 'GET', '/v2/', { authorization: `Bearer ${await token('repository:team/app:pull')}` });
    expect(run.byWorker).toBeGreaterThan(0);
    expect(run.answers.map((a) => a.status)).toEqual(Array(READS).fill(200));
  }, SLOW_MACHINE_TIMEOUT_MS);

  it('adds a worker on demand, which serves, and removes it without counting its exit as a crash', async () => {
    const restartsBefore = restarted.length;
    await workers.add();
    expect(workers.threads()).toHaveLength(2);
    const bearer = { authorization: `Bearer ${await token('repository:team/app:pull')}` };
    const byThread = async () => (await workers.served()).map((n) => n);
    const before = await byThread();
    const run = await spread(READS, 'GET', '/v2/', bearer);
    const after = await byThread();
    expect(run.answers.map((a) => a.status)).toEqual(Array(READS).fill(200));
    // The added worker (the second) got some of the new connections.
    expect(after[1] - before[1]).toBeGreaterThan(0);
    const removed = workers.threads()[1];
    const exited = new Promise<number>((resolve) => removed.once('exit', resolve));
    await workers.remove();
    await exited;
    expect(workers.threads()).toHaveLength(1);
    expect(workers.threads()).not.toContain(removed);
    expect(restarted.length).toBe(restartsBefore);
    expect(fatal).toEqual([]);
    const alone = await spread(READS, 'GET', '/v2/', bearer);
    expect(alone.answers.map((a) => a.status)).toEqual(Array(READS).fill(200));
  }, SLOW_MACHINE_TIMEOUT_MS);

  it('gives up after more than 5 unexpected exits in a minute: onFatal, and no worker is started again', async () => {
    // The restart check's crash came before (within the minute, unless this machine is very slow); each terminate()
    // here is one more, restarted until the sixth in the minute.
    const restartedBefore = restarted.length;
    let exits = 0;
    for (; fatal.length === 0 && exits < 10; exits++) {
      const restartsBefore = restarted.length;
      const [thread] = workers.threads();
      await thread.terminate();
      const settled = () => restarted.length > restartsBefore || fatal.length > 0;
      await new Promise<void>((resolve) => {
        const poll = () => (settled() ? resolve() : setTimeout(poll, 20));
        poll();
      });
    }
    expect(fatal.map((e) => e.message)).toEqual(['read workers exited 6 times in a minute']);
    // Every exit but the last was followed by a restart; the last by none.
    expect(restarted.length - restartedBefore).toBe(exits - 1);
    expect(exits).toBeGreaterThanOrEqual(5);
    expect(workers.threads()).toEqual([]);
  }, SLOW_MACHINE_TIMEOUT_MS);

  it('stops every worker thread on close, leaving the port to the main thread alone', async () => {
    const threads = [...workers.threads()];
    const exits = threads.map((t) => new Promise<number>((resolve) => t.once('exit', resolve)));
    await workers.close();
    await Promise.all(exits);
    expect(workers.threads()).toEqual([]);
    const run = await spread(8, 'GET', '/v2/', { authorization: `Bearer ${await token('repository:team/app:pull')}` });
    expect(run.byMain).toBe(8);
    expect(run.answers.map((a) => a.status)).toEqual(Array(8).fill(200));
  }, SLOW_MACHINE_TIMEOUT_MS);
});

describe('planReadWorkers', () => {
  const base = { data: { dir: '/tmp/unused' }, server: { readWorkers: 2 } };

  it('runs as many as server.readWorkers says from the start, and none for 0', () => {
    expect(planReadWorkers(parseConfig({ data: { dir: '/tmp/unused' }, server: { readWorkers: 0 } }))).toEqual({ count: 0, max: 0 });
    expect(planReadWorkers(parseConfig(base))).toEqual({ count: 2, max: 2 });
  });

  it('runs none, saying why, where one thread must keep the state: TLS, rate limits, a mirror namespace', () => {
    const refused = [
      parseConfig({ ...base, http: { tls: { certificate: '/tmp/c.pem', key: '/tmp/k.pem' } } }),
      parseConfig({ ...base, limits: { addressRate: 10 } }),
      parseConfig({ ...base, mirror: { namespace: 'hub' } }),
    ];
    for (const config of refused) {
      const plan = planReadWorkers(config);
      expect(plan.count).toBe(0);
      expect(plan.reason).toEqual(expect.any(String));
    }
  });
});

describe('planReadWorkers with auto (the default)', () => {
  it('starts none and may run up to the cores but one; on one core, none', () => {
    const config = parseConfig({ data: { dir: '/tmp/unused' } });
    expect(config.server.readWorkers).toBe('auto');
    expect(planReadWorkers(config, 4)).toEqual({ count: 0, max: 3 });
    expect(planReadWorkers(config, 2)).toEqual({ count: 0, max: 1 });
    expect(planReadWorkers(config, 1)).toEqual({ count: 0, max: 0, reason: expect.any(String) });
  });

  it('runs none where one thread must keep the state, as with a number', () => {
    const plan = planReadWorkers(parseConfig({ data: { dir: '/tmp/unused' }, limits: { principalRate: 5 } }), 8);
    expect(plan).toEqual({ count: 0, max: 0, reason: expect.stringMatching(/rate limits/) });
  });
});

describe('ensurePortFree', () => {
  it('refuses a port another listener holds, even one opened with reusePort, and lets a free one be', async () => {
    const holder = createHttpServer((_req, res) => res.end(), parseConfig({ data: { dir: '/tmp/unused' } }).limits);
    await new Promise<void>((resolve) => holder.listen({ port: 0, host: '127.0.0.1', reusePort: true }, resolve));
    const held = (holder.address() as AddressInfo).port;
    await expect(ensurePortFree('127.0.0.1', held)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await new Promise((resolve) => holder.close(resolve));
    await expect(ensurePortFree('127.0.0.1', held)).resolves.toBeUndefined();
    await expect(ensurePortFree('127.0.0.1', 0)).resolves.toBeUndefined();
  });
});

describe('usableCores', () => {
  it('counts the CPUs the process may run on, fewer under a cgroup CPU quota (a container limit), rounded up', () => {
    expect(usableCores(8, undefined)).toBe(8);
    expect(usableCores(8, 'max 100000\n')).toBe(8);
    expect(usableCores(8, '150000 100000\n')).toBe(2);
    expect(usableCores(8, '50000 100000\n')).toBe(1);
    expect(usableCores(2, '400000 100000\n')).toBe(2);
  });
});
