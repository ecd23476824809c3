/**
 * The garbage-collect command as a real process beside a running embedded registry: it never collects on data the
 * registry holds (it refuses, naming the holder's pid, and points at --registry), and with --registry it collects
 * through the registry's admin API, which only admins may call. Once the registry has stopped, it collects itself.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '@lading/config';
import { EmbeddedRegistry, createEmbeddedRegistry } from '@lading/embedded';
import type { GcCollection, GcPlan } from '@lading/gc';
import { blobKey } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
import { imageManifest, makeBlob, makeGcQueuesDue } from '@lading/testing';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const ADMIN = { user: 'gc-admin', password: 'gc-admin-password-1' };

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs garbage-collect on `dir` with `env` added (no LADING_* of the test's own environment). */
async function gcCli(dir: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tools/gc/garbage-collect.ts', ...args], {
    cwd: REPO_ROOT,
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('LADING_'))),
      NODE_OPTIONS: '',
      LADING_DATA_DIR: dir,
      LADING_LOG_LEVEL: 'silent',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = await once(child, 'close');
  return { code: code as number | null, stdout, stderr };
}

describe('garbage-collect beside a running embedded registry', () => {
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: http.Server;
  let url: string;
  const adminEnv = { LADING_ADMIN_USER: ADMIN.user, LADING_ADMIN_PASSWORD: ADMIN.password };

  beforeAll(async () => {
    dir = await realpath(await mkdtemp(path.join(tmpdir(), 'lading-gc-cli-')));
    const config = parseConfig({ data: { dir }, admin: ADMIN, gc: { enabled: false, reviewDelay: '1h' }, log: { level: 'silent', access: false } });
    registry = await createEmbeddedRegistry(config, createLogger({ service: 'test', level: 'silent' }));
    server = http.createServer(registry.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    if (server.listening) await new Promise((resolve) => server.close(resolve));
    await registry.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  /** Moves the collector's clock on: its queues act now (@lading/testing). */
  async function makeDue(): Promise<void> {
    await makeGcQueuesDue(registry.db, { tombstones: false });
  }

  async function manifestThere(repository: string, digest: string): Promise<boolean> {
    return (await fetch(`${url}/v2/${repository}/manifests/${digest}`, { method: 'HEAD' })).status === 200;
  }

  /** Pushes an image by digest only: nothing references it, so it goes once its review falls due. */
  async function pushUntagged(repository: string) {
    const config = makeBlob(`{"os":"linux","n":"${Math.random()}"}`);
    const layer = makeBlob(2048);
    const manifest = imageManifest(config, [layer]);
    for (const blob of [config, layer]) {
      const res = await fetch(`${url}/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: new Uint8Array(blob.data), headers: { 'Content-Type': 'application/octet-stream' } });
      expect(res.status).toBe(201);
    }
    const put = await fetch(`${url}/v2/${repository}/manifests/${manifest.digest}`, { method: 'PUT', body: manifest.body.toString(), headers: { 'Content-Type': manifest.mediaType } });
    expect(put.status).toBe(201);
    return { manifest, layer };
  }

  it("refuses to collect, or even report, on the registry's data while it runs, naming the holder's pid and --registry", async () => {
    const img = await pushUntagged('held/app');
    await makeDue();
    for (const args of [[], ['--dry-run']]) {
      const run = await gcCli(dir, args);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`data.dir ${dir} is in use by another Lading process (pid ${process.pid})`);
      expect(run.stderr).toContain('--registry http://127.0.0.1:5000');
      expect(run.stdout).toBe('');
    }
    expect(await manifestThere('held/app', img.manifest.digest)).toBe(true);
  }, 60_000);

  it('collects through the running registry with --registry: the dry run names the image, two rounds delete it and its blobs', async () => {
    const img = await pushUntagged('through/app');
    await makeDue();
    const dry = await gcCli(dir, ['--registry', url, '--dry-run', '--json'], adminEnv);
    expect(dry).toMatchObject({ code: 0, stderr: '' });
    const plan = JSON.parse(dry.stdout) as GcPlan;
    expect(plan.items).toContainEqual(expect.objectContaining({ kind: 'manifest', action: 'delete', target: `through/app@${img.manifest.digest}` }));
    expect(await manifestThere('through/app', img.manifest.digest)).toBe(true);

    const first = await gcCli(dir, ['--registry', url, '--json'], adminEnv);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect((JSON.parse(first.stdout) as GcCollection).deleted.manifests).toBeGreaterThanOrEqual(1);
    expect(await manifestThere('through/app', img.manifest.digest)).toBe(false);
    // The manifest's blobs were queued by its deletion, a review delay later.
    await makeDue();
    const second = await gcCli(dir, ['--registry', url, '--json'], adminEnv);
    expect(second).toMatchObject({ code: 0, stderr: '' });
    expect((JSON.parse(second.stdout) as GcCollection).deleted.blobs).toBeGreaterThanOrEqual(2);
    expect(await registry.store.stat(blobKey(img.layer.digest))).toBeNull();
    expect(first.stdout + second.stdout).not.toContain(ADMIN.password);
  }, 90_000);

  it('lets only admins collect through the API, and never prints the credentials it was given', async () => {
    const img = await pushUntagged('guarded/app');
    await makeDue();
    expect((await fetch(`${url}/admin/v1/gc/collect`, { method: 'POST' })).status).toBe(401);
    expect((await fetch(`${url}/admin/v1/gc/dry-run`)).status).toBe(401);
    const wrong = await gcCli(dir, ['--registry', url], { LADING_ADMIN_USER: ADMIN.user, LADING_ADMIN_PASSWORD: 'not-the-password-42' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/answered 401/);
    expect(wrong.stdout + wrong.stderr).not.toContain('not-the-password-42');
    expect(await manifestThere('guarded/app', img.manifest.digest)).toBe(true);
    const bad = await fetch(`${url}/admin/v1/gc/dry-run?all=maybe`, { headers: { Authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}` } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ errors: [{ code: 'UNSUPPORTED' }] });
  }, 60_000);

  it('collects on the data itself once the registry has stopped', async () => {
    await new Promise((resolve) => server.close(resolve));
    await registry.close();
    const run = await gcCli(dir, ['--json']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect((JSON.parse(run.stdout) as GcCollection).deleted.manifests).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
