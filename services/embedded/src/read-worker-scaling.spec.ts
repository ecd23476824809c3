/**
 * `server.readWorkers: auto` (read-worker-scaling.ts): the policy tick by tick (no clock: each sample is one tick's
 * measurements), and the scaling of real read workers beside a real embedded registry, its ticks called by the spec.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, type Server, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '@lading/config';
import { createHttpServer } from '@lading/runtime';
import { createLogger } from '@lading/telemetry';
import { type EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';
import { DEFAULT_SCALING, type ReadWorkerScaling, type ScalingSample, type ScalingState, createReadWorkerScaling, decideScaling, initialScalingState } from './read-worker-scaling';
import { type ReadWorkers, startReadWorkers, withPrincipalSecret } from './read-workers';
import { createWriteEpoch } from './write-epoch';

const SLOW_MACHINE_TIMEOUT_MS = 120_000;
const busyReads: ScalingSample = { main: 0.95, workers: [], requests: 1000, reads: 990 };
const busyPush: ScalingSample = { main: 0.95, workers: [], requests: 3, reads: 0 };
const idle: ScalingSample = { main: 0.02, workers: [], requests: 1, reads: 1 };
const middling: ScalingSample = { main: 0.5, workers: [], requests: 400, reads: 400 };

/** Feeds `samples` to the policy and returns each tick's step. */
function run(state: ScalingState, samples: ScalingSample[], running: number, max: number): Array<string | null> {
  return samples.map((sample) => decideScaling(state, sample, running, max));
}

describe('the read workers scaling policy', () => {
  it(`adds a worker after ${DEFAULT_SCALING.busyTicks} busy ticks of mostly reads, and nudges clients for ${DEFAULT_SCALING.nudgeTicks} ticks after`, () => {
    const state = initialScalingState();
    const steps = run(state, Array(DEFAULT_SCALING.busyTicks).fill(busyReads), 0, 1);
    expect(steps).toEqual([...Array(DEFAULT_SCALING.busyTicks - 1).fill(null), 'grow']);
    expect(state.nudging).toBe(DEFAULT_SCALING.nudgeTicks);
    run(state, Array(DEFAULT_SCALING.nudgeTicks).fill(middling), 1, 1);
    expect(state.nudging).toBe(0);
  });

  it('adds none for a main thread busy with a push, nor at idle, nor above the maximum', () => {
    expect(run(initialScalingState(), Array(20).fill(busyPush), 0, 1)).toEqual(Array(20).fill(null));
    expect(run(initialScalingState(), Array(20).fill(idle), 0, 1)).toEqual(Array(20).fill(null));
    expect(run(initialScalingState(), Array(20).fill(busyReads), 1, 1)).toEqual(Array(20).fill(null));
  });

  it('counts busy ticks in a row only: one calmer tick starts the count again', () => {
    const samples = [busyReads, busyReads, middling, busyReads, busyReads, busyReads];
    expect(run(initialScalingState(), samples, 0, 3)).toEqual([null, null, null, null, null, 'grow']);
  });

  it('grows one worker at a time while the workers are busy too, up to the maximum', () => {
    const state = initialScalingState();
    const allBusy = (n: number): ScalingSample => ({ main: 0.9, workers: Array(n).fill(0.9), requests: 500, reads: 500 });
    const steps = [...run(state, Array(3).fill(allBusy(0)), 0, 2), ...run(state, Array(3).fill(allBusy(1)), 1, 2), ...run(state, Array(6).fill(allBusy(2)), 2, 2)];
    expect(steps.filter((s) => s === 'grow')).toHaveLength(2);
    expect(steps.filter((s) => s === 'shrink')).toHaveLength(0);
  });

  it(`stops a worker after ${DEFAULT_SCALING.quietTicks} quiet ticks in a row, never one that is not there`, () => {
    const state = initialScalingState();
    const quiet = { ...idle, workers: [0.01] };
    const steps = run(state, [...Array(DEFAULT_SCALING.quietTicks - 1).fill(quiet), middling, ...Array(DEFAULT_SCALING.quietTicks).fill(quiet)], 1, 1);
    expect(steps.filter((s) => s !== null)).toEqual(['shrink']);
    expect(steps[steps.length - 1]).toBe('shrink');
    expect(run(initialScalingState(), Array(DEFAULT_SCALING.quietTicks * 2).fill(idle), 0, 1).filter((s) => s !== null)).toEqual([]);
  });
});

describe('auto read workers beside a real embedded registry', () => {
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  let workers: ReadWorkers;
  let scaling: ReadWorkerScaling;
  let port: number;

  /** A GET on a connection of its own (closed after), or on `agent`'s kept-alive connections. */
  function get(target: string, agent?: Agent): Promise<{ status: number; connection: string | undefined }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: target, headers: agent ? {} : { connection: 'close' }, agent: agent ?? false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-read-scaling-'));
    const config = withPrincipalSecret(parseConfig({ data: { dir }, server: { readWorkers: 'auto' }, log: { level: 'silent', access: false } }));
    const logger = createLogger({ service: 'test', level: 'silent' });
    registry = await createEmbeddedRegistry(config, logger);
    const epoch = createWriteEpoch();
    // A policy that decides on every tick, so that the spec's ticks (not a clock) drive it.
    scaling = createReadWorkerScaling({ max: 1, logger, policy: { ...DEFAULT_SCALING, busyUtilization: 0, busyTicks: 1, readShare: 0.5, quietUtilization: 1.01, quietTicks: 1, nudgeEvery: 1 } });
    server = createHttpServer(scaling.watch(epoch.watch(registry.app)), config.limits);
    await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', reusePort: true }, resolve));
    port = (server.address() as AddressInfo).port;
    workers = await startReadWorkers({ config, logger, registry, epoch, count: 0, host: '127.0.0.1', port });
    scaling.start(workers, false);
  }, SLOW_MACHINE_TIMEOUT_MS);

  afterAll(async () => {
    await workers?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await registry?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts with no worker, adds one after reads, asks kept-alive clients to reconnect once, and stops it when quiet', async () => {
    const kept = new Agent({ keepAlive: true, maxSockets: 4 });
    expect(workers.threads()).toHaveLength(0);
    // No request in the tick: nothing calls for a worker.
    expect(await scaling.tick()).toBe(null);
    // Four connections kept alive, all on the main thread (the only listener yet).
    const before = await Promise.all(Array.from({ length: 4 }, () => get('/v2/', kept)));
    expect(before.map((a) => [a.status, a.connection])).toEqual(Array(4).fill([200, 'keep-alive']));
    expect(await scaling.tick()).toBe('grow');
    expect(workers.threads()).toHaveLength(1);
    expect(scaling.nudging()).toBe(true);
    // While nudging (every read here), each connection the main thread had before the worker is closed once...
    const nudged = await Promise.all(Array.from({ length: 4 }, () => get('/v2/', kept)));
    expect(nudged.map((a) => [a.status, a.connection])).toEqual(Array(4).fill([200, 'close']));
    // ...and the connections opened since, wherever the kernel put them, are left alone.
    const after = await Promise.all(Array.from({ length: 4 }, () => get('/v2/', kept)));
    expect(after.map((a) => [a.status, a.connection])).toEqual(Array(4).fill([200, 'keep-alive']));
    kept.destroy();
    expect(await scaling.tick()).toBe('shrink');
    expect(workers.threads()).toHaveLength(0);
    expect((await get('/v2/')).status).toBe(200);
  }, SLOW_MACHINE_TIMEOUT_MS);
});
