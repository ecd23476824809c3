/**
 * The benchmark's `workers` section (issue 25: "the embedded mode uses more than one core for reads: on a machine with
 * N cores its pull throughput grows with N"): the embedded process pinned with `taskset` to 1 core with no read worker
 * and to 2 cores with 1 (N − 1) read worker, and, to tell the worker's share from the second core's, to 2 cores with
 * none and to 1 core with 1. They take turns on manifest GET by digest and GET of the image's 1 MB layer.
 *
 * The load generator is `wrk` (one thread, in a process of its own, unpinned): a C event loop that spends a fraction
 * of the CPU per request the server does, where autocannon (node) spends about as much as the server; without `wrk`
 * on the PATH the section falls back to autocannon and says so. Its CPU is read too (`/usr/bin/time` when present),
 * because on a 2-core box it competes with the server for the same cores: the figure that says whether the process
 * uses more than one core is the server's own CPU (cores it got) beside its rate, and where that CPU went, thread by
 * thread (`/proc/<pid>/task/<tid>/stat`, by thread name: the main thread, the read workers, V8's helpers, libuv's
 * pool).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '@lading/config';
import { startCommand } from '../build/bundle';
import { measureRate, type LoadShape } from './load';
import { failed, formatFigure, formatNumber, measured, thresholdVerdict, type Figure, type Row } from './report';
import { startEmbedded, type RunningServer, type TargetContext } from './targets';

/**
 * The setups measured: read workers × the cores the process is pinned to; `auto` (the default) starts with none and
 * is warmed up long enough (`AUTO_WARMUP_S`) for its scaling to start one.
 */
const SETUPS = [
  { key: 'none-1', workers: '0', cpus: '0', label: 'none, 1 core' },
  { key: 'one-2', workers: '1', cpus: '0,1', label: '1 worker, 2 cores' },
  { key: 'none-2', workers: '0', cpus: '0,1', label: 'none, 2 cores' },
  { key: 'one-1', workers: '1', cpus: '0', label: '1 worker, 1 core' },
  { key: 'auto-2', workers: 'auto', cpus: '0,1', label: 'auto, 2 cores' },
] as const;

/** Seconds of load before an `auto` setup is measured: 3 busy seconds start a worker, which then takes connections. */
const AUTO_WARMUP_S = 6;

type SetupKey = (typeof SETUPS)[number]['key'];

/** Thread groups of the embedded process, by the thread's name (`comm`). */
const THREAD_GROUPS = [
  { name: 'main', test: (comm: string) => comm === 'MainThread' },
  { name: 'read workers', test: (comm: string) => comm.startsWith('read-worker') },
  { name: 'V8 helpers', test: (comm: string) => comm.startsWith('V8') || comm.startsWith('DelayedTask') },
  { name: 'libuv pool', test: (comm: string) => comm.startsWith('libuv') },
] as const;

/** What the section needs from the runner. */
export interface WorkersSectionDeps {
  ctx: TargetContext;
  shape: LoadShape;
  /** Rounds per metric; the order of the setups alternates between rounds. */
  rounds: number;
  /** The paths measured, with their names (manifest GET by digest, a blob GET). */
  metrics: ReadonlyArray<{ name: string; path: string; headers: Record<string, string> }>;
  /** Pushes the benchmark's image into a started registry. */
  load(baseUrl: string): Promise<void>;
  start(starter: () => Promise<RunningServer>): Promise<RunningServer>;
  stop(server: RunningServer): Promise<void>;
  attempt(label: string, measure: () => Promise<Figure>): Promise<Figure>;
}

/** What one run against one setup measured. */
interface RunFigures {
  rps: number;
  /** Cores the server used (CPU seconds per second). */
  serverCores: number;
  /** Server CPU per request answered, µs. */
  serverUs: number;
  /** Per thread group, CPU per request answered, µs. */
  threadUs: Record<string, number>;
  /** Cores the load generator used (NaN when not read). */
  loaderCores: number;
  /** Share of the box's CPU that was busy. */
  boxBusy: number;
  /** Read worker threads running at the end of the run. */
  workerThreads: number;
}

const run = (file: string, args: string[], timeoutMs: number) =>
  new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(file, args, { maxBuffer: 16 << 20, timeout: timeoutMs }, (err, stdout, stderr) => (err ? reject(Object.assign(err, { stderr })) : resolve({ stdout, stderr })));
  });

/** Whether an executable is on the PATH (or at an absolute path). */
function onPath(name: string): string | undefined {
  if (name.startsWith('/')) return existsSync(name) ? name : undefined;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}

/** CPU seconds so far of every thread of `pid`, by thread id, with its name. */
function threadTimes(pid: number): Map<string, { comm: string; seconds: number }> {
  const times = new Map<string, { comm: string; seconds: number }>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return times;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      times.set(tid, { comm, seconds: (Number(fields[11]) + Number(fields[12])) / 100 });
    } catch {
      // the thread ended meanwhile
    }
  }
  return times;
}

/** The whole box's CPU ticks: all and busy. */
function boxTicks(): { total: number; busy: number } {
  const t = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = t.reduce((a, b) => a + b, 0);
  return { total, busy: total - t[3] - t[4] };
}

/**
 * One `wrk` run (`-t1 -c<connections> -d<seconds>`): requests per second of 2xx answers and the CPU seconds wrk used
 * (from `/usr/bin/time`, NaN without it). Throws when anything failed (socket errors, non-2xx answers).
 */
async function wrk(bin: string, url: string, connections: number, seconds: number, headers: Record<string, string>): Promise<{ rps: number; requests: number; cpuSeconds: number }> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
  const time = onPath('/usr/bin/time');
  const { stdout, stderr } = time ? await run(time, ['-f', 'cpu %U %S', bin, ...args], (seconds + 60) * 1000) : await run(bin, args, (seconds + 60) * 1000);
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? NaN);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = socketErrors ? socketErrors.slice(1).reduce((s, n) => s + Number(n), 0) : 0;
  if (!Number.isFinite(requests) || requests === 0 || non2xx + errors > 0.001 * requests) {
    throw new Error(`wrk: ${requests} requests, ${non2xx} non-2xx, ${errors} socket errors: ${stdout.replace(/\s+/g, ' ').slice(0, 300)}`);
  }
  const cpu = /cpu ([\d.]+) ([\d.]+)/.exec(stderr);
  return { rps, requests, cpuSeconds: cpu ? Number(cpu[1]) + Number(cpu[2]) : NaN };
}

/** Measures one setup on one path: a warm-up, then the measured run with the server's CPU per thread around it. */
async function measureOne(wrkBin: string | undefined, server: RunningServer, path: string, headers: Record<string, string>, shape: LoadShape): Promise<RunFigures> {
  // Cores are the CPU a setup got: /proc's clock ticks are 100 a second on Linux.
  const url = `${server.baseUrl}${path}`;
  const pid = server.pid!;
  if (!wrkBin) {
    // autocannon: the process's CPU only (per thread as below), the load generator's not read.
    const before = threadTimes(pid);
    const box = boxTicks();
    const started = performance.now();
    const r = await measureRate(url, shape, headers, pid);
    return figuresOf(pid, before, box, performance.now() - started, r.rps, r.requests, NaN, shape.warmupSeconds + shape.seconds);
  }
  if (shape.warmupSeconds > 0) await wrk(wrkBin, url, shape.connections, shape.warmupSeconds, headers);
  const before = threadTimes(pid);
  const box = boxTicks();
  const started = performance.now();
  const r = await wrk(wrkBin, url, shape.connections, shape.seconds, headers);
  return figuresOf(pid, before, box, performance.now() - started, r.rps, r.requests, r.cpuSeconds, shape.seconds);
}

function figuresOf(pid: number, before: Map<string, { comm: string; seconds: number }>, box: { total: number; busy: number }, elapsedMs: number, rps: number, requests: number, loaderCpu: number, loadedSeconds: number): RunFigures {
  const after = threadTimes(pid);
  const boxAfter = boxTicks();
  const byGroup: Record<string, number> = {};
  let total = 0;
  for (const [tid, { comm, seconds }] of after) {
    const used = seconds - (before.get(tid)?.seconds ?? 0);
    total += used;
    const group = THREAD_GROUPS.find((g) => g.test(comm))?.name ?? 'other';
    byGroup[group] = (byGroup[group] ?? 0) + used;
  }
  // With autocannon the warm-up is inside the window: spread the CPU over every request of it, at the measured rate.
  const answered = rps * loadedSeconds || requests;
  const threadUs: Record<string, number> = {};
  for (const [group, seconds] of Object.entries(byGroup)) threadUs[group] = (seconds / answered) * 1e6;
  return {
    rps,
    serverCores: total / (elapsedMs / 1000),
    serverUs: (total / answered) * 1e6,
    threadUs,
    loaderCores: loaderCpu / (elapsedMs / 1000),
    boxBusy: (boxAfter.busy - box.busy) / Math.max(1, boxAfter.total - box.total),
    workerThreads: [...after.values()].filter((t) => t.comm.startsWith('read-worker')).length,
  };
}

/** Waits until a started embedded process logs that its read workers listen (its log is `<workDir>/<name>.log`). */
async function readWorkersListening(ctx: TargetContext, name: string): Promise<void> {
  const file = join(ctx.workDir, `${name}.log`);
  for (let i = 0; i < 900; i++) {
    if (existsSync(file) && readFileSync(file, 'utf8').includes('read workers are listening')) return;
    await sleep(100);
  }
  throw new Error(`${name}: its read workers did not listen within 90 s`);
}

/** Resident memory of a process, in MB (NaN when it cannot be read). */
function residentMb(pid: number | undefined): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return line ? Number(line.replace(/\D+/g, '')) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Workers the memory probe starts, one after the other. */
const PROBE_WORKERS = 4;

/**
 * The memory probe: a plain node process (no tsx, whose loader would follow into the workers), with the V8 flags
 * `npm start` runs, that starts `PROBE_WORKERS` read workers of the read path's bundle against upstreams that do not
 * answer (they listen and idle: no request reaches them) and prints its resident memory before and 3 s after, and
 * each worker's V8 heap.
 */
const MEMORY_PROBE = `
const { Worker } = require('node:worker_threads');
const [entry, count, configJson] = process.argv.slice(1);
const rss = () => process.memoryUsage().rss / 2 ** 20;
(async () => {
  await new Promise((r) => setTimeout(r, 500));
  const before = rss();
  const config = JSON.parse(configJson);
  const workers = [];
  for (let index = 0; index < Number(count); index++) {
    const dead = 'http://127.0.0.1:9';
    const w = new Worker(entry, { workerData: { ladingReadWorker: true, config, index, host: '127.0.0.1', port: 0, upstreams: { blob: dead, manifest: dead, auth: dead }, key: 'probe', epoch: new SharedArrayBuffer(4) } });
    await new Promise((resolve, reject) => { w.on('message', (m) => (m.type === 'listening' ? resolve() : m.type === 'failed' && reject(new Error(m.message)))); w.once('error', reject); });
    workers.push(w);
  }
  await new Promise((r) => setTimeout(r, 3000));
  const heaps = await Promise.all(workers.map((w) => w.getHeapStatistics()));
  console.log(JSON.stringify({ before, after: rss(), heapMb: heaps.reduce((s, h) => s + h.used_heap_size, 0) / heaps.length / 2 ** 20 }));
  process.exit(0);
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

/** Resident memory per read worker (MB) and each one's V8 heap in use, from the memory probe. */
export async function probeWorkerMemory(ctx: TargetContext): Promise<{ perWorkerMb: number; heapMb: number }> {
  const flags = startCommand(ctx.root).filter((a) => a.startsWith('--'));
  const config = parseConfig({ data: { dir: join(ctx.workDir, 'memory-probe') }, upstreams: { secret: 'probe'.repeat(9) }, log: { level: 'silent', access: false } });
  const { stdout } = await run(process.execPath, [...flags, '-e', MEMORY_PROBE, join(ctx.root, 'dist', 'embedded', 'read-worker.cjs'), String(PROBE_WORKERS), JSON.stringify(config)], 60_000);
  const probe = JSON.parse(stdout) as { before: number; after: number; heapMb: number };
  return { perWorkerMb: (probe.after - probe.before) / PROBE_WORKERS, heapMb: probe.heapMb };
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

function threadLine(f: RunFigures): string {
  return Object.entries(f.threadUs)
    .filter(([, us]) => us >= 0.05)
    .map(([group, us]) => `${group} ${formatNumber(us)}`)
    .join(', ');
}

/**
 * The section: starts the four setups (one build), pushes the image into each, and measures them in turns, metric
 * by metric; rows: the rate of each setup with the server's cores and CPU per request, where it went by thread, the
 * scaling ratio (1 worker on 2 cores ÷ none on 1 core) and the resident memory a worker adds.
 */
export async function measureReadWorkers(deps: WorkersSectionDeps): Promise<Row[]> {
  const wrkBin = onPath('wrk');
  console.log(`\nread workers: embedded pinned (taskset) to 1 core with no read worker, 2 cores with 1, and the two others; load: ${wrkBin ? 'wrk -t1 in its own process' : 'autocannon in its own process (wrk not on the PATH)'}, unpinned`);
  console.log(`  load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${availableParallelism()} cores`);
  const servers: Partial<Record<SetupKey, RunningServer>> = {};
  const idleMb: Partial<Record<SetupKey, number>> = {};
  const results = deps.metrics.map(() => ({} as Partial<Record<SetupKey, RunFigures[]>>));
  let failure: Figure | undefined;
  let probe: { perWorkerMb: number; heapMb: number } | undefined;
  try {
    for (const setup of SETUPS) {
      const name = `embedded-workers-${setup.key}`;
      const server = await deps.start(() => startEmbedded(deps.ctx, name, { LADING_SERVER_READWORKERS: String(setup.workers), LADING_LOG_LEVEL: 'info' }, setup.cpus));
      servers[setup.key] = server;
      if (setup.workers !== '0') await readWorkersListening(deps.ctx, name);
      await sleep(2000);
      idleMb[setup.key] = residentMb(server.pid);
      await deps.load(server.baseUrl);
    }
    await deps.attempt(`resident memory per read worker (${PROBE_WORKERS} of dist/embedded/read-worker.cjs, idle)`, async () => {
      probe = await probeWorkerMemory(deps.ctx);
      return measured(probe.perWorkerMb, `MB per worker; V8 heap in use ${formatNumber(probe.heapMb)} MB each`);
    });
    for (const [m, metric] of deps.metrics.entries()) {
      for (let round = 0; round < deps.rounds && !failure; round++) {
        const order = round % 2 === 0 ? SETUPS : [...SETUPS].reverse();
        for (const setup of order) {
          const server = servers[setup.key]!;
          const figure = await deps.attempt(`${metric.name}, ${setup.label} (cpus ${setup.cpus})`, async () => {
            const shape = setup.workers === 'auto' ? { ...deps.shape, warmupSeconds: Math.max(deps.shape.warmupSeconds, AUTO_WARMUP_S) } : deps.shape;
            const f = await measureOne(wrkBin, server, metric.path, metric.headers, shape);
            (results[m][setup.key] ??= []).push(f);
            return measured(f.rps, `rps; ${f.workerThreads} read worker thread(s); server ${formatNumber(f.serverCores)} cores, ${formatNumber(f.serverUs)} µs CPU per request (${threadLine(f)}); load generator ${formatNumber(f.loaderCores)} cores; box ${(100 * f.boxBusy).toFixed(0)} % busy; load average ${loadavg()[0].toFixed(2)}`);
          });
          if (!figure.ok) failure = figure;
        }
      }
    }
  } catch (error) {
    failure = failed(error instanceof Error ? error.message : String(error));
  } finally {
    for (const server of Object.values(servers)) await deps.stop(server);
  }
  const rows: Row[] = [];
  for (const [m, metric] of deps.metrics.entries()) {
    const r = results[m];
    const avg = (key: SetupKey, pick: (f: RunFigures) => number) => mean((r[key] ?? []).map(pick));
    const ratio = failure ? undefined : avg('one-2', (f) => f.rps) / avg('none-1', (f) => f.rps);
    const cell = (key: SetupKey) =>
      `${formatNumber(avg(key, (f) => f.rps))} rps at ${formatNumber(avg(key, (f) => f.serverCores))} cores, ${formatNumber(avg(key, (f) => f.serverUs))} µs/req${key === 'auto-2' ? ` (${formatNumber(avg(key, (f) => f.workerThreads))} worker)` : ''}`;
    rows.push({
      metric: `embedded ${metric.name}: none on 1 core → 1 read worker on 2 cores (pinned; ${wrkBin ? 'wrk' : 'autocannon'}, load generator ${formatNumber(avg('one-2', (f) => f.loaderCores))} cores)`,
      cells: { embedded: failure ? formatFigure(failure) : `${cell('none-1')} → ${cell('one-2')} (${formatNumber(ratio ?? NaN)}×)` },
      ratio: '—',
      target: `grows with the cores (issue 25; ${availableParallelism()} cores, the load generator on them too)`,
      met: thresholdVerdict(ratio, { min: 1.3 }),
    });
    rows.push({
      metric: `  the same, none on 2 cores; 1 worker on 1 core; auto (the default) on 2 cores after ${AUTO_WARMUP_S} s of load`,
      cells: { embedded: failure ? formatFigure(failure) : `${cell('none-2')}; ${cell('one-1')}; ${cell('auto-2')}` },
      ratio: '—',
      target: '',
      met: '',
    });
    if (!failure) {
      // What the CPU per request allows whatever the box's other load: N cores over the process's CPU per request,
      // and no more than one core for its busiest thread (its main thread, or one worker).
      const ceiling = (key: SetupKey, cores: number, workers: number) => {
        const us = avg(key, (f) => f.serverUs);
        const busiest = Math.max(avg(key, (f) => f.threadUs.main ?? 0), workers > 0 ? avg(key, (f) => f.threadUs['read workers'] ?? 0) / workers : 0);
        return Math.min((cores * 1e6) / us, 1e6 / busiest);
      };
      const [one, two] = [ceiling('none-1', 1, 0), ceiling('one-2', 2, 1)];
      rows.push({
        metric: `  the CPU-bound ceiling (rps): min(cores ÷ CPU per request, 1 core ÷ the busiest thread's), none on 1 core → 1 worker on 2`,
        cells: { embedded: `${formatNumber(one)} → ${formatNumber(two)} (${formatNumber(two / one)}×)` },
        ratio: '—',
        target: '',
        met: '',
      });
    }
    if (!failure) {
      const groups = (key: SetupKey) => {
        const sums: Record<string, number> = {};
        for (const f of r[key] ?? []) for (const [g, us] of Object.entries(f.threadUs)) sums[g] = (sums[g] ?? 0) + us / (r[key] ?? []).length;
        return Object.entries(sums).filter(([, us]) => us >= 0.05).map(([g, us]) => `${g} ${formatNumber(us)}`).join(', ');
      };
      rows.push({
        metric: `  µs of CPU per request by thread: none on 1 core | 1 worker on 2 cores`,
        cells: { embedded: `${groups('none-1')} | ${groups('one-2')}` },
        ratio: '—',
        target: '',
        met: '',
      });
    }
  }
  const perWorker = mean([idleMb['one-2']! - idleMb['none-2']!, idleMb['one-1']! - idleMb['none-1']!]);
  rows.push({
    metric: 'embedded resident memory at start: none → 1 read worker (MB; 2 cores, 1 core); auto, idle',
    cells: { embedded: `${formatNumber(idleMb['none-2'] ?? NaN)} → ${formatNumber(idleMb['one-2'] ?? NaN)}; ${formatNumber(idleMb['none-1'] ?? NaN)} → ${formatNumber(idleMb['one-1'] ?? NaN)} (a worker ~${formatNumber(perWorker)} MB); auto ${formatNumber(idleMb['auto-2'] ?? NaN)}` },
    ratio: '—',
    target: '',
    met: '',
  });
  rows.push({
    metric: `resident memory per read worker: ${PROBE_WORKERS} of dist/embedded/read-worker.cjs in a bare node process, idle (MB)`,
    cells: { embedded: probe ? `${formatNumber(probe.perWorkerMb)} (V8 heap in use ${formatNumber(probe.heapMb)} each)` : 'failed' },
    ratio: '—',
    target: 'far less than the 55 MB of a worker that loaded the whole process (issue 25)',
    met: thresholdVerdict(probe?.perWorkerMb, { max: 40 }),
  });
  return rows;
}
