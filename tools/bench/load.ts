/**
 * Runs the load generators in their own processes: autocannon's CLI for request rates, and the benchmark's client
 * worker (tools/bench/client-worker.ts) for downloads, pushes and whole images.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { WorkerJob, WorkerResult } from './client-worker';

const run = promisify(execFile);
const AUTOCANNON = createRequire(__filename).resolve('autocannon/autocannon.js');

/** How hard and how long to load a target. */
export interface LoadShape {
  connections: number;
  seconds: number;
  warmupSeconds: number;
}

/** What a rate run measured. */
export interface RateResult {
  rps: number;
  p99Ms: number;
  requests: number;
  /**
   * CPU time (user + system) the server process spent per 2xx answer during the measured run, in µs; undefined
   * without a pid. Unlike rps it hardly depends on what else the box runs, so it compares servers on a busy box too.
   */
  cpuUsPerRequest?: number;
  /** The share of the whole box's CPU time (all cores, from /proc/stat) that was busy during the measured run. */
  boxBusyShare?: number;
}

/** Clock ticks per second of /proc's CPU times. */
function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/**
 * CPU seconds (user + system, its threads included) process `pid` has used; NaN when it is gone. With `thread`, those
 * of that one thread of it (the main thread's id is the process's).
 */
export function cpuSeconds(pid: number, ticks = clockTicks(), thread?: number): number {
  try {
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticks;
  } catch {
    return NaN;
  }
}

/** The whole box's CPU time so far, in ticks: all of it and the busy part (everything but idle and iowait). */
function boxTicks(): { total: number; busy: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const t = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = t.reduce((a, b) => a + b, 0);
    return { total, busy: total - t[3] - t[4] };
  } catch {
    return undefined;
  }
}

/** The share of failed requests (errors, timeouts, non-2xx) above which a rate measurement counts as failed. */
export const MAX_FAILED_SHARE = 0.001;

interface AutocannonJson {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats?: Record<string, { count: number }>;
  latency: { p99: number };
}

async function autocannon(url: string, connections: number, seconds: number, headers: Record<string, string>): Promise<AutocannonJson> {
  const args = [AUTOCANNON, '--json', '-c', String(connections), '-d', String(seconds)];
  for (const [key, value] of Object.entries(headers)) args.push('-H', `${key}=${value}`);
  args.push(url);
  const { stdout } = await run(process.execPath, args, { maxBuffer: 16 << 20, timeout: (seconds + 60) * 1000 });
  return JSON.parse(stdout) as AutocannonJson;
}

/**
 * GETs `url` with autocannon in its own process: a warm-up run (discarded), then the measured run. Throws when the
 * measured run got no 2xx answers or more than {@link MAX_FAILED_SHARE} of its requests failed.
 */
export async function measureRate(url: string, shape: LoadShape, headers: Record<string, string> = {}, serverPid?: number): Promise<RateResult> {
  if (shape.warmupSeconds > 0) await autocannon(url, shape.connections, shape.warmupSeconds, headers);
  const ticks = clockTicks();
  const cpuBefore = serverPid === undefined ? NaN : cpuSeconds(serverPid, ticks);
  const boxBefore = boxTicks();
  const result = await autocannon(url, shape.connections, shape.seconds, headers);
  const boxAfter = boxTicks();
  const cpuUsed = serverPid === undefined ? NaN : cpuSeconds(serverPid, ticks) - cpuBefore;
  const boxBusyShare = boxBefore && boxAfter && boxAfter.total > boxBefore.total ? (boxAfter.busy - boxBefore.busy) / (boxAfter.total - boxBefore.total) : undefined;
  const ok = result['2xx'];
  const bad = result.errors + result.timeouts + result.non2xx;
  if (ok === 0 || bad > MAX_FAILED_SHARE * (ok + bad)) {
    const codes = Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => `${code}×${count}`).join(' ');
    throw new Error(`${bad} of ${ok + bad} requests failed (errors ${result.errors}, timeouts ${result.timeouts}, status ${codes})`);
  }
  return { rps: ok / result.duration, p99Ms: result.latency.p99, requests: ok, cpuUsPerRequest: Number.isFinite(cpuUsed) ? (cpuUsed * 1e6) / ok : undefined, boxBusyShare };
}

/** Runs one job in a client-worker process and returns what it measured (throws with the worker's error). */
export async function runWorker(root: string, job: WorkerJob, timeoutS = 900): Promise<WorkerResult> {
  let stdout: string;
  try {
    ({ stdout } = await run(process.execPath, ['--import', 'tsx', join(root, 'tools/bench/client-worker.ts'), JSON.stringify(job)], { cwd: root, maxBuffer: 1 << 20, timeout: timeoutS * 1000 }));
  } catch (error) {
    const out = (error as { stdout?: string }).stdout ?? '';
    stdout = out || JSON.stringify({ ok: false, error: error instanceof Error ? error.message : String(error) });
  }
  const line = stdout.trim().split('\n').pop() ?? '';
  const parsed = JSON.parse(line) as { ok: true; result: WorkerResult } | { ok: false; error: string };
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.result;
}
