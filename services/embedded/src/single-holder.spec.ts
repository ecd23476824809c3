/**
 * One embedded registry per data directory, on real processes (services/embedded/src/main.ts, what `npm start`
 * bundles): of ten starts racing on one fresh directory exactly one serves and every other exits non-zero at once,
 * naming the directory and the holder's pid; a holder killed with `kill -9` leaves nothing that blocks the next
 * start, what it acknowledged before it died is still there, and the next holder holds the directory in turn.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, imageManifest, makeBlob } from '@lading/testing';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const RACERS = 10;

/** A registry process and what it printed. */
interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}


function start(dir: string, port: number): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/embedded/src/main.ts')], {
    cwd: REPO_ROOT,
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('LADING_'))),
      NODE_OPTIONS: '',
      LADING_DATA_DIR: dir,
      LADING_HTTP_ADDR: `127.0.0.1:${port}`,
      LADING_TELEMETRY_METRICSADDR: 'off',
      LADING_LOG_LEVEL: 'warn',
      LADING_LOG_ACCESS: 'false',
      LADING_GC_ENABLED: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}

async function serves(url: string): Promise<boolean> {
  return fetch(`${url}/v2/`, { signal: AbortSignal.timeout(5000) }).then(
    (r) => r.status === 200,
    () => false,
  );
}

/** Waits until every process has either exited or answered `/v2/` (or the guard runs out); resolves with those that serve. */
async function settle(started: Started[], guardMs = 150_000): Promise<Started[]> {
  const deadline = Date.now() + guardMs;
  const serving = new Set<Started>();
  while (Date.now() < deadline) {
    for (const s of started) if (s.child.exitCode === null && !serving.has(s) && (await serves(s.url))) serving.add(s);
    if (started.every((s) => serving.has(s) || s.child.exitCode !== null)) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return started.filter((s) => serving.has(s));
}

describe('one embedded registry per data directory (real processes)', () => {
  let dir: string;
  const all: Started[] = [];

  beforeAll(async () => {
    dir = await realpath(await mkdtemp(path.join(tmpdir(), 'lading-single-holder-')));
  });
  afterAll(async () => {
    for (const s of all) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await Promise.all(all.map((s) => s.exited));
    await rm(dir, { recursive: true, force: true });
  });

  let holder: Started;

  it(`lets exactly one of ${RACERS} starts racing on a fresh data directory serve; every other exits non-zero naming the directory and the holder's pid`, async () => {
    const ports = await Promise.all(Array.from({ length: RACERS }, () => freePort()));
    const racers = ports.map((port) => start(dir, port));
    all.push(...racers);
    const serving = await settle(racers);
    expect(serving).toHaveLength(1);
    holder = serving[0];
    const refused = racers.filter((s) => s !== holder);
    const codes = await Promise.all(refused.map((s) => s.exited));
    expect(codes.every((code) => code !== null && code !== 0)).toBe(true);
    for (const s of refused) {
      expect(s.output()).toContain(`data.dir ${dir} is in use by another Lading process (pid ${holder.child.pid})`);
      // One line, no stack.
      expect(s.output()).not.toMatch(/\n\s+at /);
    }
  }, 180_000);

  it('serves again after the holder is killed with kill -9, with what it acknowledged before it died, and holds the directory in turn', async () => {
    const config = makeBlob(`{"os":"linux","n":"${Date.now()}"}`);
    const layer = makeBlob(4096);
    const manifest = imageManifest(config, [layer]);
    for (const blob of [config, layer]) {
      const up = await fetch(`${holder.url}/v2/kept/app/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: new Uint8Array(blob.data), headers: { 'Content-Type': 'application/octet-stream' } });
      expect(up.status).toBe(201);
    }
    const put = await fetch(`${holder.url}/v2/kept/app/manifests/v1`, { method: 'PUT', body: manifest.body.toString(), headers: { 'Content-Type': manifest.mediaType } });
    expect(put.status).toBe(201);

    holder.child.kill('SIGKILL');
    expect(await holder.exited).toBeNull();

    const next = start(dir, await freePort());
    all.push(next);
    expect(await settle([next])).toEqual([next]);
    const got = await fetch(`${next.url}/v2/kept/app/manifests/v1`, { headers: { Accept: manifest.mediaType } });
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(manifest.body)).toBe(true);
    const blob = await fetch(`${next.url}/v2/kept/app/blobs/${layer.digest}`);
    expect(blob.status).toBe(200);
    expect(Buffer.from(await blob.arrayBuffer()).equals(layer.data)).toBe(true);

    // And the new holder holds: one more start on the (now initialised) directory is refused.
    const late = start(dir, await freePort());
    all.push(late);
    expect(await late.exited).toBe(1);
    expect(late.output()).toContain(`data.dir ${dir} is in use by another Lading process (pid ${next.child.pid})`);
    expect(await serves(next.url)).toBe(true);
  }, 180_000);
});
