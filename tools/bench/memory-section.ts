/**
 * The benchmark's memory section (issue 25: idle RSS of the embedded process ≤ 150 MB, a 2 GB push peaks ≤ 256 MB in
 * every process it crosses): 2 GB pushes, monolithic and chunked (64 MB PATCHes), into Lading embedded and through the
 * cluster (nginx → gateway → blob service → MinIO), with the resident set of each process the push crosses: before the
 * pushes (idle) and its peak during each push. The embedded process's idle figure is read twice, 3 s after it answers
 * and again after `IDLE_SETTLE_MS` with no request: its background loops (collector, outbox relay, maintenance) run
 * meanwhile, and a target met at 3 s by a process that grows at rest is not met. The peak is the kernel's own high-water mark (VmHWM, reset before
 * each push through /proc/<pid>/clear_refs), or, where it cannot be reset, the highest VmRSS sampled every 100 ms.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { runWorker } from './load';
import { failed, formatFigure, formatNumber, measured, thresholdVerdict, type Figure, type Row } from './report';
import { clusterPid, startCluster, startEmbedded, type RunningServer, type TargetContext } from './targets';

const MB = 1 << 20;
/** The target of issue 25 for the peak of every process a 2 GB push crosses (MB). */
const PEAK_TARGET_MB = 256;
/** The target of issue 25 for the embedded process at rest (MB). */
const IDLE_TARGET_MB = 150;
/** How long after start-up the embedded process's idle RSS is read the second time (ms). */
const IDLE_SETTLE_MS = 120_000;
/** The cluster's processes a blob push crosses (nginx spreads the requests of a push over both gateways). */
const CLUSTER_PROCESSES = ['gateway-1', 'gateway-2', 'blob-1', 'blob-2'] as const;
/** The pushes each target takes: monolithic (POST + one PUT), and chunked in 64 MB PATCHes. */
const PUSHES = [['monolithic', undefined], ['chunked', 64 * MB]] as const;

/** What the memory section needs from the runner. */
export interface MemorySectionDeps {
  ctx: TargetContext;
  /** Starts a server the runner stops at the end (also on errors and Ctrl-C). */
  start(starter: () => Promise<RunningServer>): Promise<RunningServer>;
  stop(server: RunningServer): Promise<void>;
}

/** The shape of the section: how large a blob each push sends, and which targets take them. */
export interface MemoryShape {
  blobBytes: number;
  embedded: boolean;
  cluster: boolean;
}

/** One field of /proc/<pid>/status in MB (VmRSS, VmHWM); 0 when the process is gone. */
export function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0; // the process is gone; the push will fail and say so
  }
}

/** Resets the kernel's peak-RSS mark of `pid` (writing 5 to clear_refs); false when this user may not. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * The peak resident set (MB) of each of `pids` while `during` runs: VmHWM after a reset where the kernel allows it
 * (exact), else the highest VmRSS sampled every 100 ms.
 */
async function peaksDuring(pids: readonly number[], during: () => Promise<void>): Promise<number[]> {
  const exact = pids.map(resetPeak);
  const sampled = pids.map((pid) => statusMb(pid, 'VmRSS'));
  const sample = () => pids.forEach((pid, i) => { sampled[i] = Math.max(sampled[i], statusMb(pid, 'VmRSS')); });
  const timer = setInterval(sample, 100);
  try {
    await during();
  } finally {
    clearInterval(timer);
    sample();
  }
  return pids.map((pid, i) => (exact[i] ? Math.max(statusMb(pid, 'VmHWM'), sampled[i]) : sampled[i]));
}

/** A 2 GB push (generated in the client, never on disk) and its rate. */
async function push(ctx: TargetContext, base: string, repo: string, size: number, chunkBytes: number | undefined): Promise<number> {
  const r = await runWorker(ctx.root, { kind: 'generated-push', base, repo, size, chunkBytes });
  return r.bytes / MB / r.seconds;
}

/**
 * Each push's peaks over `pids` as figures, one per push and process, with the push's rate as note; a failed push
 * fails its figures, with the peaks seen until it failed in the reason (a full disk under MinIO, say, is not a
 * memory figure).
 */
async function measurePushes(deps: MemorySectionDeps, base: string, label: string, names: readonly string[], pids: readonly number[], size: number): Promise<Record<string, Figure[]>> {
  const peaks: Record<string, Figure[]> = {};
  for (const [kind, chunkBytes] of PUSHES) {
    let rate = '';
    let failure: string | undefined;
    const started = performance.now();
    const values = await peaksDuring(pids, async () => {
      try {
        rate = `${formatNumber(await push(deps.ctx, base, `bench/memory-${label}-${kind}`, size, chunkBytes))} MB/s`;
      } catch (error) {
        failure = error instanceof Error ? error.message : String(error);
      }
    });
    const seen = names.map((n, i) => `${n} ${formatNumber(values[i])} MB`).join(', ');
    const took = `[${((performance.now() - started) / 1000).toFixed(1)} s]`;
    console.log(`  peak RSS, ${label}, ${kind}: ${failure ? `FAILED ${failure}; peaks until then: ` : `${rate}: `}${seen} ${took}`);
    peaks[kind] = values.map((v) => (failure ? failed(`${formatNumber(v)} MB until the push failed: ${failure}`) : measured(v, rate)));
  }
  return peaks;
}

/** The worst peak over every figure, or undefined when one failed. */
function worst(figures: Figure[]): number | undefined {
  return figures.every((f) => f.ok) ? Math.max(...figures.map((f) => (f.ok ? f.value : 0))) : undefined;
}

/** The embedded process: idle RSS after start-up, then the peak of each push. */
async function embeddedRows(deps: MemorySectionDeps, shape: MemoryShape): Promise<Row[]> {
  console.log(`\nmemory: ${shape.blobBytes / MB / 1024} GB pushes into embedded`);
  const server = await deps.start(() => startEmbedded(deps.ctx, 'embedded-memory'));
  let peaks: Record<string, Figure[]>;
  let idle: number;
  let settled: number;
  try {
    const started = performance.now();
    await sleep(3000); // let start-up settle
    idle = statusMb(server.pid ?? -1, 'VmRSS');
    console.log(`  RSS when idle, 3 s after start-up: ${formatNumber(idle)} MB`);
    await sleep(Math.max(0, IDLE_SETTLE_MS - (performance.now() - started)));
    settled = statusMb(server.pid ?? -1, 'VmRSS');
    console.log(`  RSS when idle, ${IDLE_SETTLE_MS / 60_000} min after start-up: ${formatNumber(settled)} MB`);
    peaks = await measurePushes(deps, server.baseUrl, 'embedded', ['embedded'], [server.pid ?? -1], shape.blobBytes);
  } finally {
    await deps.stop(server);
  }
  return [
    {
      metric: `embedded RSS when idle, 3 s / ${IDLE_SETTLE_MS / 60_000} min after start-up (no request yet)`,
      cells: { embedded: `${formatNumber(idle)} MB / ${formatNumber(settled)} MB` },
      ratio: '—',
      target: `≤ ${IDLE_TARGET_MB} MB`,
      met: thresholdVerdict(Math.max(idle, settled), { max: IDLE_TARGET_MB }),
    },
    {
      metric: `embedded peak RSS pushing ${shape.blobBytes / MB / 1024} GB: monolithic / chunked (64 MB PATCHes)`,
      cells: { embedded: `${formatFigure(peaks.monolithic[0], 'MB')} / ${formatFigure(peaks.chunked[0], 'MB')}` },
      ratio: '—',
      target: `≤ ${PEAK_TARGET_MB} MB`,
      met: thresholdVerdict(worst([...peaks.monolithic, ...peaks.chunked]), { max: PEAK_TARGET_MB }),
    },
  ];
}

/** The cluster (started here, under the cluster lock): each gateway's and blob service's idle RSS and peaks. */
async function clusterRows(deps: MemorySectionDeps, shape: MemoryShape): Promise<Row[]> {
  console.log(`\nmemory: ${shape.blobBytes / MB / 1024} GB pushes through the cluster (nginx → gateways → blob services → MinIO)`);
  const metric = `cluster peak RSS pushing ${shape.blobBytes / MB / 1024} GB, per process: monolithic / chunked (64 MB PATCHes); idle before`;
  let cluster: RunningServer;
  try {
    cluster = await deps.start(() => startCluster(deps.ctx, (l) => console.log(`  ${l}`)));
  } catch (error) {
    const reason = `cluster did not start: ${error instanceof Error ? error.message : String(error)}`;
    console.log(`  ${reason}`);
    return [{ metric, cells: { cluster: formatFigure(failed(reason)) }, ratio: '—', target: `≤ ${PEAK_TARGET_MB} MB each`, met: 'failed' }];
  }
  let peaks: Record<string, Figure[]>;
  let idle: number[];
  try {
    const pids = await Promise.all(CLUSTER_PROCESSES.map((name) => clusterPid(deps.ctx, name)));
    await sleep(3000); // let start-up settle
    idle = pids.map((pid) => statusMb(pid, 'VmRSS'));
    console.log(`  RSS when idle: ${CLUSTER_PROCESSES.map((n, i) => `${n} ${formatNumber(idle[i])} MB`).join(', ')}`);
    peaks = await measurePushes(deps, cluster.baseUrl, 'cluster', CLUSTER_PROCESSES, pids, shape.blobBytes);
  } finally {
    await deps.stop(cluster);
  }
  const mb = (f: Figure) => (f.ok ? `${formatNumber(f.value)} MB` : formatFigure(f));
  const cell = CLUSTER_PROCESSES.map((name, i) => `${name} ${mb(peaks.monolithic[i])} / ${mb(peaks.chunked[i])} (idle ${formatNumber(idle[i])} MB)`).join('; ');
  const rates = [peaks.monolithic[0], peaks.chunked[0]].map((f) => (f.ok ? f.note : 'failed')).join(' / ');
  return [{
    metric,
    cells: { cluster: `${cell}; pushes at ${rates}` },
    ratio: '—',
    target: `≤ ${PEAK_TARGET_MB} MB each`,
    met: thresholdVerdict(worst([...peaks.monolithic, ...peaks.chunked]), { max: PEAK_TARGET_MB }),
  }];
}

/** Runs the memory section on the targets the shape names; one row per figure. */
export async function measureMemory(deps: MemorySectionDeps, shape: MemoryShape): Promise<Row[]> {
  const rows: Row[] = [];
  if (shape.embedded) rows.push(...await embeddedRows(deps, shape));
  if (shape.cluster) rows.push(...await clusterRows(deps, shape));
  return rows;
}
