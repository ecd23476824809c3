/**
 * `npm run bench`: Lading (embedded, and the distributed cluster) side by side with CNCF Distribution v3 (the anchor)
 * and 2.8.2 on this box, plus a raw node:http ceiling: one table of figures, each with its ratio to v3, the server CPU
 * per request of each one-process server, and the targets of issue 25.
 *
 *   node --import tsx tools/bench/run.ts [--quick | --full] [--only a,b] [--out FILE] [--connections N] [--keep]
 *
 * --only takes target names (distribution = v3, distribution-x2, distribution-x2-s3, distribution-2.8, embedded,
 * cluster) and/or sections (v2, digest, tag, blob, push, image, ceiling, scaling, workers: embedded's read workers,
 * manifest and blob GETs pinned to 1 core and to 2, tracing, audit: manifest GETs with the audit trail on and off,
 * memory: 2 GB pushes into embedded and through the cluster with the peak RSS of each process they cross
 * (tools/bench/memory-section.ts), proxy: the pull-through cache against v3 as its upstream, quota: pushes with and
 * without a namespace quota). Every server it starts is stopped at the end, also on errors and Ctrl-C.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem, loadavg, availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeImage, writeRandomFile, type BenchImage } from './content';
import { cpuSeconds, measureRate, runWorker, type LoadShape } from './load';
import type { WorkerJob } from './client-worker';
import { MANIFEST_ACCEPT, createRegistryClient, expectAnswer } from '@lading/client';
import { comparisonRow, failed, formatFigure, formatNumber, measured, renderMarkdown, renderText, thresholdVerdict, type Figure, type Row, type TargetFigures } from './report';
import { clusterAddress, clusterPid, distributionVersion, createCpuLimiter, killClusterProcess, startCeiling, startClusterProcess, startCluster, startDistribution, startDistributionReplicas, startEmbedded, startOtlpSink, type RunningServer, type TargetContext } from './targets';
import { readFileSync } from 'node:fs';
import { measureProxy, type ProxyShape } from './proxy-section';
import { measureQuota, type QuotaShape } from './quota-section';
import { measureMemory } from './memory-section';
import { measureReadWorkers } from './workers-section';

const TARGETS = ['distribution', 'distribution-x2', 'distribution-x2-s3', 'distribution-2.8', 'embedded', 'cluster'] as const;
type TargetName = (typeof TARGETS)[number];
const SECTIONS = ['v2', 'digest', 'tag', 'blob', 'push', 'image', 'ceiling', 'scaling', 'workers', 'tracing', 'audit', 'memory', 'proxy', 'quota'] as const;
type Section = (typeof SECTIONS)[number];

/** The run's settings, from the command line. */
interface Options {
  mode: 'quick' | 'default' | 'full';
  /** Keep the temp directory (server logs, data) instead of deleting it. */
  keep: boolean;
  targets: Set<TargetName>;
  sections: Set<Section>;
  out: string;
  shape: LoadShape;
  /** Blob GET turns per registry, 2 downloads each. */
  downloadRounds: number;
  pushes: number;
  imageSeconds: number;
  layerBytes: number;
  bigBlobBytes: number;
  memoryBlobBytes: number;
  /** The pull-through cache section's rounds and sizes. */
  proxy: ProxyShape;
  /** The quota section's rounds. */
  quota: QuotaShape;
}

const MB = 1 << 20;
/** The CPU budget of each gateway in the CPU-limited scaling runs: small enough that one gateway is the bottleneck. */
const GATEWAY_CPU_LIMIT = 0.25;
/** tools/cluster's nginx upstream `fail_timeout`: how long nginx shuns a gateway that failed (killed, restarting). */
const NGINX_FAIL_TIMEOUT_MS = 2_000;
/** The 1- and 2-gateway figures of one scaling sequence. */
interface ScalingRuns {
  one: Figure;
  two: Figure;
}
const ROOT = resolve(__dirname, '../..');
const REPO_IMAGE = 'bench/image';
const REPO_BIG = 'bench/big';
const TAG = 'latest';

function parseOptions(argv: string[]): Options {
  let mode: Options['mode'] = 'default';
  let only: string[] = [];
  let out = join(ROOT, 'tools/bench/.results/latest.md');
  let connections = 50;
  let keep = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') mode = 'quick';
    else if (arg === '--full') mode = 'full';
    else if (arg === '--keep') keep = true;
    else if (arg === '--only') only = (argv[++i] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    else if (arg === '--out') out = resolve(argv[++i] ?? out);
    else if (arg === '--connections') connections = Number(argv[++i]);
    else if (arg === '--help' || arg === '-h') {
      const source = readFileSync(__filename, 'utf8');
      console.log(source.slice(source.indexOf('/**') + 3, source.indexOf('*/')).split('\n').slice(1, -1).map((l) => l.replace(/^ \* ?/, '')).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown option ${arg} (try --help)`);
  }
  if (!Number.isInteger(connections) || connections < 1 || connections > 1000) throw new Error('--connections must be 1..1000');
  const unknown = only.filter((name) => !(TARGETS as readonly string[]).includes(name) && !(SECTIONS as readonly string[]).includes(name));
  if (unknown.length) throw new Error(`--only: unknown ${unknown.join(', ')}; use ${[...TARGETS, ...SECTIONS].join(', ')}`);
  const onlyTargets = only.filter((n): n is TargetName => (TARGETS as readonly string[]).includes(n));
  const onlySections = only.filter((n): n is Section => (SECTIONS as readonly string[]).includes(n));
  const defaultSections = SECTIONS.filter((s) => s !== 'memory' || mode === 'full');
  const quick = mode === 'quick';
  return {
    mode,
    keep,
    targets: new Set(onlyTargets.length ? onlyTargets : TARGETS),
    sections: new Set(onlySections.length ? onlySections : defaultSections),
    out,
    shape: { connections, seconds: quick ? 4 : 10, warmupSeconds: quick ? 1 : 3 },
    downloadRounds: quick ? 1 : 4,
    pushes: quick ? 2 : 4,
    imageSeconds: quick ? 4 : 8,
    layerBytes: 1 * MB,
    bigBlobBytes: 256 * MB,
    memoryBlobBytes: 2048 * MB,
    quota: { rounds: quick ? 2 : 4, seconds: quick ? 3 : 6, layerBytes: 64 * 1024 },
    proxy: {
      coldRounds: quick ? 2 : mode === 'full' ? 6 : 4,
      blobBytes: 256 * MB,
      warmRounds: quick ? 1 : 2,
      concurrentPulls: 20,
      concurrentBytes: quick ? 64 * MB : 256 * MB,
      imageRounds: quick ? 1 : 2,
      imageLayers: 4,
      imageLayerBytes: 16 * MB,
    },
  };
}

/** Runs `measure`, turning any error into a failed figure that says why. */
async function attempt(label: string, measure: () => Promise<Figure>): Promise<Figure> {
  const started = performance.now();
  const took = () => `[${((performance.now() - started) / 1000).toFixed(1)} s]`;
  try {
    const figure = await measure();
    console.log(`  ${label}: ${formatFigure(figure)} ${took()}`);
    return figure;
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ');
    console.log(`  ${label}: FAILED ${reason} ${took()}`);
    return failed(reason);
  }
}

/** Pushes the small image (config + layers, tagged) into a registry. */
async function loadImage(baseUrl: string, image: BenchImage): Promise<void> {
  const client = createRegistryClient({ url: baseUrl, connections: 4, timeoutMs: 600_000 });
  try {
    for (const blob of [image.config, ...image.layers]) await client.pushBlobStream(REPO_IMAGE, blob.digest, blob.size, blob.data);
    expectAnswer(await client.putManifest(REPO_IMAGE, TAG, image.manifest), 201, `PUT manifest ${REPO_IMAGE}:${TAG}`);
    const back = (await client.readManifest(REPO_IMAGE, image.manifest.digest)).bytes;
    if (!back.equals(image.manifest.body)) throw new Error('the manifest read back differs from the one pushed');
  } finally {
    await client.close();
  }
}

/** The large blob, written once to a file and pushed from it. */
interface BigBlob {
  file: string;
  digest: string;
  size: number;
}

/** Every figure of the run, by section and target. */
type Figures = Partial<Record<string, TargetFigures>>;

function put(figures: Figures, key: string, target: TargetName, figure: Figure): void {
  figures[key] = { ...figures[key], [target]: figure };
}

/** A registry under test and whether the shared content went into it. */
interface Subject {
  name: TargetName;
  server: RunningServer;
  image: Figure;
  big?: Figure;
}

/** Pushes the image (and the big blob, when blob GETs will be measured) into a started registry. */
async function prepare(opts: Options, name: TargetName, server: RunningServer, image: BenchImage, big: BigBlob | undefined): Promise<Subject> {
  const base = server.baseUrl;
  const loaded = await attempt(`${name}: load image`, async () => { await loadImage(base, image); return measured(1, 'ok'); });
  const bigLoaded = big && opts.sections.has('blob')
    ? await attempt(`${name}: load ${big.size / MB} MB blob`, async () => {
      const r = await runWorker(ROOT, { kind: 'push-blob', base, repo: REPO_BIG, file: big.file, digest: big.digest, size: big.size });
      return measured(r.bytes / MB / r.seconds, 'MB/s');
    })
    : undefined;
  return { name, server, image: loaded, big: bigLoaded };
}

/** The server's process id where its CPU is read: the one-process targets (the cluster and v3 ×2 have none). */
function cpuPid(subject: Subject): number | undefined {
  return subject.server.pid;
}

/** Runs `work` and returns what it returned with the server CPU time (ms) spent meanwhile; NaN where not read. */
async function withServerCpu<T>(subject: Subject, work: () => Promise<T>): Promise<{ result: T; cpuMs: number }> {
  const pid = cpuPid(subject);
  const before = pid === undefined ? NaN : cpuSeconds(pid);
  const result = await work();
  return { result, cpuMs: pid === undefined ? NaN : (cpuSeconds(pid) - before) * 1000 };
}

/** Whether the server CPU of the subject named `name` is read. */
function readsCpu(subjects: readonly Subject[], name: TargetName): boolean {
  const subject = subjects.find((s) => s.name === name);
  return subject !== undefined && cpuPid(subject) !== undefined;
}

/** The sections that compare targets, in the order they run. */
const COMPARED: readonly Section[] = ['v2', 'digest', 'tag', 'blob', 'push', 'image'];

/**
 * Measures one section on each of `subjects` into `figures`: the large transfers (blob GET, push) with the
 * registries taking turns, the rest on one registry after the other.
 */
async function measureSection(opts: Options, section: Section, subjects: readonly Subject[], image: BenchImage, big: BigBlob | undefined, figures: Figures): Promise<void> {
  if (section === 'blob' || section === 'push') {
    if (big) await (section === 'push' ? measurePushes : measureDownloads)(opts, subjects, big, figures);
    return;
  }
  for (const subject of subjects) await measureOnOne(opts, section, subject, image, figures);
}

/**
 * Measures a section other than the large transfers on one registry. A figure whose content failed to load is
 * failed with that reason rather than measured against an empty registry.
 */
async function measureOnOne(opts: Options, section: Exclude<Section, 'blob' | 'push'>, subject: Subject, image: BenchImage, figures: Figures): Promise<void> {
  const { name } = subject;
  const base = subject.server.baseUrl;
  const notLoaded = (what: Figure | undefined): Figure | undefined => (what && !what.ok ? failed(`content not loaded: ${what.reason}`) : undefined);
  const rate = async (key: string, path: string, needsImage: boolean) => {
    const missing = needsImage ? notLoaded(subject.image) : undefined;
    let p99: Figure = failed('not measured');
    let cpu: Figure = failed('no process id to read');
    const rps = missing ?? await attempt(`${key} rps, ${name}`, async () => {
      const r = await measureRate(`${base}${path}`, opts.shape, { accept: MANIFEST_ACCEPT }, cpuPid(subject));
      p99 = measured(r.p99Ms);
      if (r.cpuUsPerRequest !== undefined) cpu = measured(r.cpuUsPerRequest);
      return measured(r.rps);
    });
    put(figures, key, name, rps);
    put(figures, `${key}-p99`, name, rps.ok ? p99 : rps);
    if (cpuPid(subject) !== undefined) put(figures, `${key}-cpu`, name, rps.ok ? cpu : rps);
  };
  switch (section) {
    case 'v2': return rate('v2', '/v2/', false);
    case 'digest': return rate('digest', `/v2/${REPO_IMAGE}/manifests/${image.manifest.digest}`, true);
    case 'tag': return rate('tag', `/v2/${REPO_IMAGE}/manifests/${TAG}`, true);
    case 'image': {
      // Each figure with the server CPU per image beside it (ms), where it is read.
      const images = async (key: string, label: string, job: WorkerJob, missing?: Figure) => {
        let cpu: Figure = failed('no process id to read');
        const rate = missing ?? await attempt(`${label}, ${name}`, async () => {
          const { result: r, cpuMs } = await withServerCpu(subject, () => runWorker(ROOT, job));
          if (Number.isFinite(cpuMs)) cpu = measured(cpuMs / r.operations);
          return measured(r.operations / r.seconds, `p99 ${formatNumber(r.p99Ms ?? NaN)} ms`);
        });
        put(figures, key, name, rate);
        if (cpuPid(subject) !== undefined) put(figures, `${key}-cpu`, name, rate.ok ? cpu : rate);
      };
      await images('pull', 'image pull', { kind: 'image-pull', base, repo: REPO_IMAGE, tag: TAG, seconds: opts.imageSeconds, concurrency: 10 }, notLoaded(subject.image));
      await images('push-image', 'image push', { kind: 'image-push', base, repo: 'bench/pushed', seconds: opts.imageSeconds, concurrency: 10, layerBytes: opts.layerBytes });
      return;
    }
    default:
      return;
  }
}

/** What one turn moved; `cpuMs` and `served` (downloads the CPU covers) only where the server's CPU is read. */
interface Turn {
  bytes: number;
  seconds: number;
  cpuMs?: number;
  served?: number;
}

/** One registry's turns added up, or the first failure (after which it takes no more turns). */
interface TurnTotals {
  bytes: number;
  seconds: number;
  cpuMs: number;
  served: number;
  failure?: Figure;
}

/**
 * Runs `rounds` turns on each registry, one turn at a time, the registries taking turns A B, B A, A B, … so that
 * neither always goes first (a large transfer leaves the page cache, the disk and the CPU caches in a state the
 * next one pays for). `beforeEach` runs before every turn. With `readsBigBlob`, a registry into which the big blob
 * did not load fails at once.
 */
async function inTurns(label: string, subjects: readonly Subject[], rounds: number, readsBigBlob: boolean, turn: (subject: Subject) => Promise<Turn>, beforeEach?: () => void): Promise<Map<TargetName, TurnTotals>> {
  const totals = new Map<TargetName, TurnTotals>(subjects.map((s) => [s.name, {
    bytes: 0, seconds: 0, cpuMs: 0, served: 0,
    failure: readsBigBlob && s.big && !s.big.ok ? failed(`content not loaded: ${s.big.reason}`) : undefined,
  }]));
  for (let round = 0; round < rounds; round++) {
    for (const subject of round % 2 === 0 ? subjects : [...subjects].reverse()) {
      const total = totals.get(subject.name)!;
      if (total.failure) continue;
      beforeEach?.();
      const figure = await attempt(`${label} ${round + 1}/${rounds}, ${subject.name}`, async () => {
        const r = await turn(subject);
        total.bytes += r.bytes;
        total.seconds += r.seconds;
        total.cpuMs += r.cpuMs ?? NaN;
        total.served += r.served ?? 0;
        return measured(r.bytes / MB / r.seconds);
      });
      if (!figure.ok) total.failure = figure;
    }
  }
  return totals;
}

/**
 * Blob GETs of the big blob: `opts.downloadRounds` turns per registry of 2 concurrent downloads each, plus, per turn,
 * one download hashed against the digest first (untimed, but in the server CPU per download). When a registry
 * redirects blob GETs to presigned URLs (the cluster, v3 ×2 on MinIO), the turns are run again with redirects off
 * in every registry that has them (`blob-direct`: the registry streams the bytes itself), beside the ones that never
 * redirect, and then redirects are turned back on.
 */
async function measureDownloads(opts: Options, subjects: readonly Subject[], big: BigBlob, figures: Figures): Promise<void> {
  const turns = (label: string, key: string, cpuKey: string) => async () => {
    const totals = await inTurns(label, subjects, opts.downloadRounds, true, async (subject) => {
      const { result: r, cpuMs } = await withServerCpu(subject, () => runWorker(ROOT, { kind: 'download', base: subject.server.baseUrl, repo: REPO_BIG, digest: big.digest, count: 2, concurrency: 2 }));
      return { bytes: r.bytes, seconds: r.seconds, cpuMs, served: r.operations + 1 };
    });
    for (const [name, total] of totals) {
      put(figures, key, name, total.failure ?? measured(total.bytes / MB / total.seconds, `${total.served - opts.downloadRounds} downloads in ${opts.downloadRounds} turn${opts.downloadRounds === 1 ? '' : 's'}`));
      if (!readsCpu(subjects, name)) continue;
      const cpu = Number.isFinite(total.cpuMs) ? measured(total.cpuMs / total.served) : failed('no process id to read');
      put(figures, cpuKey, name, total.failure ?? cpu);
    }
  };
  await turns('blob GET', 'blob', 'blob-cpu')();
  const turnable = subjects.filter((s) => s.server.redirects);
  if (turnable.length === 0) return;
  const turnAll = async (on: boolean) => {
    for (const subject of turnable) {
      const turned = await attempt(`${subject.name}: redirects ${on ? 'on' : 'off'}`, async () => { await subject.server.redirects!(on); return measured(1, 'ok'); });
      if (!turned.ok) put(figures, 'blob-direct', subject.name, turned);
    }
  };
  await turnAll(false);
  try {
    await turns('blob GET, redirects off', 'blob-direct', 'blob-direct-cpu')();
  } finally {
    await turnAll(true);
  }
}

/**
 * Monolithic pushes of the big blob, `opts.pushes` per registry, each into a new repository and each of a blob new
 * to the registry (the file with its first bytes made random: a registry skips the commit of a blob it holds, and a
 * real push stores new layers), with the box's dirty pages written out (`sync`) before every push so that no push
 * pays for the writeback of the one before it.
 */
async function measurePushes(opts: Options, subjects: readonly Subject[], big: BigBlob, figures: Figures): Promise<void> {
  const totals = await inTurns('monolithic push', subjects, opts.pushes, false, async (subject) => {
    const repo = `bench/push-${Date.now()}`;
    const { result: r, cpuMs } = await withServerCpu(subject, () => runWorker(ROOT, { kind: 'push-blob', base: subject.server.baseUrl, repo, file: big.file, digest: big.digest, size: big.size, fresh: true }));
    return { bytes: r.bytes, seconds: r.seconds, cpuMs, served: 1 };
  }, () => execFileSync('sync'));
  for (const [name, total] of totals) {
    put(figures, 'push', name, total.failure ?? measured(total.bytes / MB / total.seconds, `${opts.pushes} pushes, taking turns, synced before each`));
    if (!readsCpu(subjects, name)) continue;
    put(figures, 'push-cpu', name, total.failure ?? (Number.isFinite(total.cpuMs) ? measured(total.cpuMs / total.served) : failed('no process id to read')));
  }
}

/** How busy the box was in the 1- and 2-gateway runs, from their notes: ` (box CPU 97 % busy → 98 % busy)`. */
function boxLoad(one: Figure, two: Figure): string {
  const note = (f: Figure) => (f.ok && f.note ? f.note : undefined);
  return note(one) && note(two) ? ` (${note(one)} → ${note(two)?.replace('box CPU ', '')})` : '';
}

function machineLines(distribution: string[]): string[] {
  const commit = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  })();
  return [
    `date: ${new Date().toISOString()}`,
    `machine: ${availableParallelism()} cores (nproc), ${cpus()[0]?.model ?? 'unknown CPU'}, ${formatNumber(totalmem() / 2 ** 30)} GiB memory, load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    `versions: Node ${process.version}; ${distribution.join('; ')}; Lading ${commit}`,
  ];
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const workDir = mkdtempSync(join(tmpdir(), 'lading-bench-'));
  const ctx: TargetContext = { root: ROOT, workDir };
  const running = new Set<RunningServer>();
  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= (async () => {
    for (const server of [...running].reverse()) await server.stop().catch((e: unknown) => console.error(`stopping ${server.name}: ${String(e)}`));
    running.clear();
    if (opts.keep) console.log(`bench: kept ${workDir} (server logs and data)`);
    else rmSync(workDir, { recursive: true, force: true });
  })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, stopping everything it started`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  const start = async (starter: () => Promise<RunningServer>): Promise<RunningServer> => {
    const server = await starter();
    running.add(server);
    return server;
  };
  const stop = async (server: RunningServer) => {
    running.delete(server);
    await server.stop();
  };

  try {
    // Installed first (on a fresh machine; v3 is built once per pin), so that the header names the versions that run.
    const releases = ([[['distribution', 'distribution-x2', 'distribution-x2-s3'], 'v3'], [['distribution-2.8'], '2.8']] as const)
      .filter(([names]) => names.some((name) => opts.targets.has(name)));
    const distVersions = await Promise.all(releases.map(([, release]) => distributionVersion(ctx, release)
      .catch((e: unknown) => `Distribution ${release} unavailable (${e instanceof Error ? e.message : String(e)})`)));
    const header = machineLines(distVersions);
    console.log(header.join('\n'));
    console.log(`mode ${opts.mode}: ${opts.shape.connections} connections, ${opts.shape.warmupSeconds} s warm-up + ${opts.shape.seconds} s per rate; targets ${[...opts.targets].join(', ')}; sections ${[...opts.sections].join(', ')}`);

    const image = makeImage(opts.layerBytes);
    const needsBig = opts.sections.has('blob') || opts.sections.has('push');
    const big: BigBlob | undefined = needsBig
      ? { file: join(workDir, 'big.bin'), digest: await writeRandomFile(join(workDir, 'big.bin'), opts.bigBlobBytes), size: opts.bigBlobBytes }
      : undefined;
    const figures: Figures = {};
    const extra: Row[] = [];
    const digestPath = `/v2/${REPO_IMAGE}/manifests/${image.manifest.digest}`;
    let ceiling: Figure | undefined;
    let scaling: { free: ScalingRuns; limited: ScalingRuns; direct: Figure } | undefined;
    let tracing: { on: Figure; exports: number } | undefined;

    const compared = COMPARED.filter((sec) => opts.sections.has(sec));
    const failAll = (name: TargetName, reason: string) => {
      for (const key of ['v2', 'v2-p99', 'digest', 'digest-p99', 'tag', 'tag-p99', 'blob', 'push', 'pull', 'push-image']) put(figures, key, name, failed(reason));
    };
    const startTarget = async (name: TargetName): Promise<RunningServer | undefined> => {
      const startedAt = performance.now();
      try {
        const server = await start(() => {
          switch (name) {
            case 'distribution': return startDistribution(ctx, 'v3');
            case 'distribution-x2': return startDistributionReplicas(ctx, 'filesystem');
            case 'distribution-x2-s3': return startDistributionReplicas(ctx, 's3');
            case 'distribution-2.8': return startDistribution(ctx, '2.8');
            case 'embedded': return startEmbedded(ctx, 'embedded');
            case 'cluster': return startCluster(ctx, (l) => console.log(`  ${l}`));
          }
        });
        console.log(`  ${name} started in ${((performance.now() - startedAt) / 1000).toFixed(1)} s at ${server.baseUrl}`);
        return server;
      } catch (error) {
        const reason = `did not start: ${error instanceof Error ? error.message : String(error)}`;
        console.log(`  ${name} ${reason}`);
        failAll(name, reason);
        return undefined;
      }
    };
    const rateOf = (url: string) => async () => measured((await measureRate(url, opts.shape, { accept: MANIFEST_ACCEPT })).rps);
    /** A rate with how busy the whole box was meanwhile (what bounds the cluster's scaling on a small box). */
    const rateWithBoxLoad = (url: string) => async () => {
      const r = await measureRate(url, opts.shape, { accept: MANIFEST_ACCEPT });
      return measured(r.rps, r.boxBusyShare === undefined ? undefined : `box CPU ${(100 * r.boxBusyShare).toFixed(0)} % busy`);
    };

    // Distribution v3, 2.8.2 and Lading embedded (and the ceiling) run side by side, and each metric is measured on one
    // right after the other, so that a busy neighbour on the box weighs on all of them alike.
    // The tracing row compares embedded's manifest GET by digest with that of a second, traced embedded instance.
    const withTracing = opts.sections.has('tracing') && opts.targets.has('embedded');
    const local = (['distribution', 'distribution-2.8', 'embedded'] as const).filter((t) => opts.targets.has(t));
    const localSections = withTracing && !compared.includes('digest') ? (['digest', ...compared] as Section[]) : compared;
    if ((local.length && localSections.length) || opts.sections.has('ceiling')) {
      console.log(`\n${[...(localSections.length ? local : []), opts.sections.has('ceiling') ? 'raw node:http' : '', withTracing ? 'embedded traced' : ''].filter(Boolean).join(' + ')}, metric by metric`);
      const subjects: Subject[] = [];
      for (const name of localSections.length ? local : []) {
        const server = await startTarget(name);
        if (server) subjects.push(await prepare(opts, name, server, image, big));
      }
      let tracedServer: RunningServer | undefined;
      let sink: (RunningServer & { received(): number }) | undefined;
      if (withTracing) {
        const otlpSink = await startOtlpSink();
        sink = otlpSink;
        running.add(otlpSink);
        tracing = { on: await attempt('embedded traced: start and load image', async () => {
          tracedServer = await start(() => startEmbedded(ctx, 'embedded-traced', {
            OTEL_TRACES_EXPORTER: 'otlp',
            OTEL_TRACES_SAMPLER: 'traceidratio',
            OTEL_TRACES_SAMPLER_ARG: '0.1',
            OTEL_EXPORTER_OTLP_ENDPOINT: otlpSink.baseUrl,
            OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
          }));
          await loadImage(tracedServer.baseUrl, image);
          return measured(1, 'ok');
        }), exports: 0 };
      }
      const measureTraced = async () => {
        const server = tracedServer;
        if (!server || !tracing || !sink) return;
        tracedServer = undefined;
        tracing.on = await attempt('digest rps, embedded traced', rateOf(`${server.baseUrl}${digestPath}`));
        await stop(server);
        tracing.exports = sink.received();
      };
      let ceilingServer: RunningServer | undefined;
      if (opts.sections.has('ceiling')) {
        const manifestFile = join(workDir, 'manifest.json');
        await writeFile(manifestFile, image.manifest.body);
        ceiling = await attempt('raw node:http: start', async () => {
          ceilingServer = await start(() => startCeiling(ctx, digestPath, manifestFile, image.manifest.mediaType, image.manifest.digest));
          return measured(1, 'ok');
        });
      }
      const measureCeiling = async () => {
        const server = ceilingServer;
        if (!server) return;
        ceilingServer = undefined;
        ceiling = await attempt('digest rps, raw node:http', rateOf(`${server.baseUrl}${digestPath}`));
        await stop(server);
      };
      for (const section of localSections) {
        await measureSection(opts, section, subjects, image, big, figures);
        if (section === 'digest') {
          await measureCeiling();
          await measureTraced();
        }
      }
      await measureCeiling();
      for (const subject of subjects) await stop(subject.server);
      if (sink) await stop(sink);
    }

    // The audit trail's cost on pulls: two embedded processes of the same build, audit on and off, taking turns on
    // manifest GET by digest (off, on, then on, off, ...), alone on the box.
    if (opts.sections.has('audit') && opts.targets.has('embedded')) {
      console.log('\naudit trail: embedded manifest GET by digest, audit on and off');
      const servers: Partial<Record<'on' | 'off', RunningServer>> = {};
      const sums = { on: 0, off: 0 };
      let failure: Figure | undefined;
      try {
        for (const side of ['on', 'off'] as const) {
          const server = await start(() => startEmbedded(ctx, `embedded-audit-${side}`, { LADING_AUDIT_ENABLED: String(side === 'on'), LADING_AUDIT_PULLWINDOW: '10s' }));
          servers[side] = server;
          await loadImage(server.baseUrl, image);
        }
        const rounds = opts.mode === 'quick' ? 1 : 2;
        for (let round = 0; round < rounds && !failure; round++) {
          for (const side of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
            const figure = await attempt(`digest rps, embedded audit ${side}`, rateOf(`${servers[side]!.baseUrl}${digestPath}`));
            if (!figure.ok) failure = figure;
            else sums[side] += figure.value / rounds;
          }
        }
      } catch (error) {
        failure = failed(error instanceof Error ? error.message : String(error));
      } finally {
        for (const server of Object.values(servers)) await stop(server);
      }
      const ratio = failure ? undefined : sums.on / sums.off;
      extra.push({
        metric: 'embedded manifest GET by digest: audit off → on (rps; pulls counted in memory, one batch per 10 s)',
        cells: { embedded: failure ? formatFigure(failure) : `${formatNumber(sums.off)} → ${formatNumber(sums.on)} (${formatNumber(ratio ?? NaN)}×)` },
        ratio: '—',
        target: 'audit on ≥ 0.95× off (issue 23)',
        met: thresholdVerdict(ratio, { min: 0.95 }),
      });
    }

    // Read workers (server.readWorkers): embedded pinned to 1 core with none and to 2 cores with one (and the other
    // two), taking turns on manifest GET by digest and GET of a 1 MB blob under wrk (workers-section.ts).
    if (opts.sections.has('workers') && opts.targets.has('embedded')) {
      extra.push(...await measureReadWorkers({
        ctx,
        shape: opts.shape,
        rounds: opts.mode === 'quick' ? 1 : 2,
        metrics: [
          { name: 'manifest GET by digest', path: `/v2/${REPO_IMAGE}/manifests/${image.manifest.digest}`, headers: { accept: MANIFEST_ACCEPT } },
          { name: `GET of a ${formatNumber(image.layers[0].size / MB)} MB blob`, path: `/v2/${REPO_IMAGE}/blobs/${image.layers[0].digest}`, headers: {} },
        ],
        load: (baseUrl) => loadImage(baseUrl, image),
        start,
        stop,
        attempt,
      }));
    }

    // The cluster comes up after the others are stopped (under the cluster lock), beside what it is compared with: 2
    // Distribution v3 replicas behind nginx on the filesystem and on MinIO, which idle while the cluster is measured;
    // the large transfers take turns.
    const clusterScaling = opts.targets.has('cluster') && opts.sections.has('scaling');
    const distributed = (['distribution-x2', 'distribution-x2-s3', 'cluster'] as const).filter((t) => opts.targets.has(t) && (compared.length || (t === 'cluster' && clusterScaling)));
    if (distributed.length) {
      console.log(`\n${distributed.join(' + ')}${distributed.length > 1 ? ', metric by metric' : ''}`);
      const subjects: Subject[] = [];
      try {
        for (const name of distributed) {
          const started = await startTarget(name);
          if (started) subjects.push(await prepare(opts, name, started, image, big));
        }
        const server = subjects.find((s) => s.name === 'cluster')?.server;
        if (!server && clusterScaling) {
          const down = { one: failed('cluster did not start'), two: failed('cluster did not start') };
          scaling = { free: down, limited: down, direct: failed('cluster did not start') };
        }
        for (const section of compared) await measureSection(opts, section, subjects, image, big, figures);
        if (server && clusterScaling) {
          // Both replicas behind nginx, then gateway-2 killed (nginx sends everything to gateway-1), then both again
          // (gateway-2 restarted): the 2-replica figure is the mean of the runs before and after, so that neither
          // side gains from running later on a warmer (or a busier) box. `placed` runs on every gateway process
          // before it is measured (the CPU-limited variant puts it in its cgroup).
          const url = `${server.baseUrl}${digestPath}`;
          // Before each measured run every gateway in it is loaded directly for a while (discarded), after nginx's
          // fail_timeout has passed: a gateway restarted cold (and, CPU-limited, slow to compile its hot path) or
          // still shunned by nginx would otherwise count as missing capacity.
          const warm = async (names: string[]): Promise<void> => {
            await sleep(NGINX_FAIL_TIMEOUT_MS + 500);
            const shape = { ...opts.shape, seconds: opts.shape.warmupSeconds + 2, warmupSeconds: 0 };
            await Promise.all(names.map((name) => measureRate(`${clusterAddress(ctx, name)}${digestPath}`, shape, { accept: MANIFEST_ACCEPT })));
          };
          const sequence = async (label: string, placed: (name: string) => Promise<void>): Promise<ScalingRuns> => {
            const twoBefore = await attempt(`digest rps, 2 gateways behind nginx${label}`, async () => {
              await placed('gateway-1');
              await placed('gateway-2');
              await warm(['gateway-1', 'gateway-2']);
              return rateWithBoxLoad(url)();
            });
            const one = await attempt(`digest rps, 1 gateway behind nginx (gateway-2 killed)${label}`, async () => {
              await killClusterProcess(ctx, 'gateway-2');
              await warm(['gateway-1']);
              return rateWithBoxLoad(url)();
            });
            const twoAfter = await attempt(`digest rps, 2 gateways behind nginx again (gateway-2 restarted)${label}`, async () => {
              await startClusterProcess(ctx, 'gateway-2');
              await placed('gateway-2');
              await warm(['gateway-1', 'gateway-2']);
              return rateWithBoxLoad(url)();
            });
            const two = twoBefore.ok && twoAfter.ok
              ? measured((twoBefore.value + twoAfter.value) / 2, `${twoAfter.note ?? ''}; runs ${formatNumber(twoBefore.value)} and ${formatNumber(twoAfter.value)}`)
              : twoBefore.ok ? twoAfter : twoBefore;
            return { one, two };
          };
          const free = await sequence('', async () => undefined);
          // The same with each gateway held to a fixed CPU budget, as a CPU limit holds a pod on a node of its
          // own: the gateway tier is then the bottleneck, and the box has the cores to show whether a second
          // replica adds what the first serves.
          let limited: ScalingRuns;
          try {
            const limiter = await createCpuLimiter(GATEWAY_CPU_LIMIT);
            try {
              limited = await sequence(` (each gateway held to ${GATEWAY_CPU_LIMIT} CPU)`, async (name) => limiter.limit(name, await clusterPid(ctx, name)));
            } finally {
              await limiter.release();
            }
          } catch (error) {
            const reason = `CPU limits unavailable: ${error instanceof Error ? error.message : String(error)}`;
            limited = { one: failed(reason), two: failed(reason) };
          }
          const direct = await attempt('digest rps, gateway-1 directly', rateOf(`${clusterAddress(ctx, 'gateway-1')}${digestPath}`));
          scaling = { free, limited, direct };
        }
      } finally {
        for (const subject of subjects) await stop(subject.server);
      }
    }

    // The pull-through cache, last and alone on the box: Distribution v3 as its upstream, Lading embedded in front.
    if (opts.sections.has('proxy') && opts.targets.has('embedded') && opts.targets.has('distribution')) {
      console.log('\npull-through cache: Lading embedded with proxy namespaces over Distribution v3');
      try {
        extra.push(...await measureProxy({ ctx, start, stop, attempt }, opts.proxy, opts.mode === 'quick'));
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        console.log(`  pull-through cache: FAILED ${reason}`);
        extra.push({ metric: 'pull-through cache', cells: { embedded: formatFigure(failed(reason)) }, ratio: '—', target: '', met: 'failed' });
      }
    }

    // Storage quotas (issue 23): pushes into a namespace with a quota against one without, in one embedded Lading.
    if (opts.sections.has('quota') && opts.targets.has('embedded')) {
      console.log('\nquotas: image pushes at concurrency 16, a namespace with a quota vs one without');
      extra.push(...await measureQuota({ ctx, start, stop, attempt }, opts.quota));
    }

    if (scaling) {
      const { free, limited, direct } = scaling;
      const row = (metric: string, { one, two }: ScalingRuns, tail: string, target: string): Row => {
        const factor = one.ok && two.ok ? two.value / one.value : undefined;
        return {
          metric,
          cells: { cluster: `${one.ok && two.ok ? `${formatNumber(one.value)} → ${formatNumber(two.value)} (${formatNumber(factor ?? NaN)}×)` : `${formatFigure(one)} → ${formatFigure(two)}`}${boxLoad(one, two)}${tail}` },
          ratio: '—',
          target,
          met: thresholdVerdict(factor, { min: 1.6 }),
        };
      };
      extra.push(row('cluster manifest GET by digest behind nginx: 1 → 2 gateways (rps)', free, `; gateway-1 without nginx ${formatFigure(direct)}`, `≥ 1.6× with 2 gateways (this box: ${availableParallelism()} cores for everything)`));
      extra.push(row(`the same, each gateway held to ${GATEWAY_CPU_LIMIT} CPU (a CPU limit, as on nodes of their own)`, limited, '', '≥ 1.6× with 2 gateways'));
    }

    if (ceiling) {
      const top = ceiling;
      const share = (f: Figure | undefined) => (top.ok && f?.ok ? (100 * f.value) / top.value : undefined);
      const shareText = (f: Figure | undefined) => (f === undefined ? '—' : share(f) === undefined ? (f.ok ? 'FAILED: ceiling' : formatFigure(f)) : `${formatNumber(share(f) ?? NaN)} %`);
      const digest = figures.digest ?? {};
      extra.push({
        metric: `manifest GET by digest, % of raw node:http (${formatFigure(top, 'rps')})`,
        cells: Object.fromEntries(Object.entries(digest).map(([key, figure]) => [key, shareText(figure)])),
        ratio: '—',
        target: '≥ 50 % of node:http',
        met: digest.embedded ? thresholdVerdict(share(digest.embedded), { min: 50 }) : '',
      });
    }

    if (tracing) {
      const off = figures.digest?.embedded ?? failed('embedded not measured');
      const { on, exports } = tracing;
      const cost = off.ok && on.ok ? (100 * (off.value - on.value)) / off.value : undefined;
      extra.push({
        metric: 'embedded manifest GET by digest: tracing off → on (10 % sampled, OTLP) (rps)',
        cells: { embedded: off.ok && on.ok ? `${formatNumber(off.value)} → ${formatNumber(on.value)} (${cost !== undefined && cost >= 0 ? '−' : '+'}${formatNumber(Math.abs(cost ?? NaN))} %; ${exports} OTLP exports received)` : `${formatFigure(off)} → ${formatFigure(on)}` },
        ratio: '—',
        target: 'cost of tracing (issue 7), no target',
        met: '',
      });
    }

    if (opts.sections.has('memory')) {
      extra.push(...await measureMemory({ ctx, start, stop }, { blobBytes: opts.memoryBlobBytes, embedded: opts.targets.has('embedded'), cluster: opts.targets.has('cluster') }));
    }

    const rows: Row[] = [];
    const add = (key: string, metric: string, unit: string, minRatio?: number, higherIsBetter = true) => {
      if (figures[key]) rows.push(comparisonRow(metric, unit, figures[key] ?? {}, minRatio, higherIsBetter));
    };
    // The targets are issue 25's, embedded against Distribution v3 on the filesystem.
    const imageShape = `config + 4 × ${opts.layerBytes / MB} MB layers, c=10`;
    add('v2', 'GET /v2/ (rps)', '', 1.2);
    add('v2-cpu', 'GET /v2/, server CPU per request (µs)', '', undefined, false);
    add('digest', 'manifest GET by digest (rps)', '', 2.5);
    add('digest-p99', 'manifest GET by digest, p99 (ms)', '');
    add('digest-cpu', 'manifest GET by digest, server CPU per request (µs)', '', 0.4, false);
    add('tag', 'manifest GET by tag (rps)', '', 3);
    add('tag-p99', 'manifest GET by tag, p99 (ms)', '');
    add('tag-cpu', 'manifest GET by tag, server CPU per request (µs)', '', 0.4, false);
    add('blob', `blob GET, ${opts.bigBlobBytes / MB} MB blob (MB/s)`, '', 1.2);
    add('blob-cpu', `blob GET, server CPU per ${opts.bigBlobBytes / MB} MB download (ms)`, '', undefined, false);
    add('blob-direct', `blob GET, ${opts.bigBlobBytes / MB} MB blob, redirects off (MB/s; the registry streams the bytes)`, '', 1.2);
    add('push', `monolithic push, ${opts.bigBlobBytes / MB} MB blob (MB/s)`, '', 1.5);
    add('push-cpu', `monolithic push, server CPU per ${opts.bigBlobBytes / MB} MB push (ms)`, '', undefined, false);
    add('pull', `image pull, ${imageShape} (pulls/s)`, '', 2);
    add('pull-cpu', 'image pull, server CPU per pull (ms)', '', undefined, false);
    add('push-image', `image push, ${imageShape} (pushes/s)`, '', 1.5);
    add('push-image-cpu', 'image push, server CPU per push (ms)', '', undefined, false);
    rows.push(...extra);

    const notes = [
      `Rates: autocannon ${opts.shape.connections} connections in its own process, ${opts.shape.warmupSeconds} s warm-up then ${opts.shape.seconds} s, same for every target; rps counts 2xx answers only and a run with more than 0.1 % failed requests is FAILED.`,
      `Blob GET: ${2 * opts.downloadRounds} full downloads of a ${opts.bigBlobBytes / MB} MB random blob, 2 at a time in ${opts.downloadRounds} turns per registry (the registries taking turns as for pushes), in a separate client process, bytes counted and digest verified once; the cluster answers with a redirect to a presigned MinIO URL, which the client follows. "Redirects off": the same again with the cluster's blob services and v3 ×2 on MinIO restarted with redirects off (\`storage.redirect: false\`; v3's \`storage.redirect.disable: true\`), so that the registry streams the bytes itself; v3 ×2 on the filesystem never redirects and is measured again beside them.`,
      `Monolithic push: POST then one PUT streaming the ${opts.bigBlobBytes / MB} MB file with its first 32 bytes made random (a blob new to the registry each time, digest computed before the clock starts), ${opts.pushes} pushes into each registry (new repository each time), one at a time, the registries taking turns (A B, B A, …) with \`sync\` before each push so none pays for another's disk writeback; MB/s is all bytes over all push time.`,
      'Image pull/push: a pool of 10 concurrent clients in one separate process (undici); a push uploads new random layers each time (POST + PUT per blob, then PUT manifest by tag).',
      'Distribution v3 (`go install …/cmd/registry@v3.0.0`, tools/distribution/install), Debian\'s Distribution 2.8.2 and Lading embedded run side by side, both Distributions on the filesystem in a temp dir with no access log and the in-memory blob-descriptor cache (v3.0.0 traces every request and has no setting to stop it; `OTEL_TRACES_EXPORTER=none` keeps it from exporting); each metric is measured on one right after the other, so a busy neighbour weighs on all of them alike.',
      'Cluster: started afterwards under the cluster lock, beside 2 Distribution v3 replicas (v3 ×2) with one shared http.secret behind nginx with the cluster\'s settings (tools/cluster/nginx-conf), on one filesystem and on a bucket of their own on the cluster\'s MinIO (v3\'s s3 driver, forcepathstyle, blob GETs redirected to presigned URLs as the cluster\'s are), all measured metric by metric; the cluster is measured through nginx in front of 2 gateways, and its ratio is printed to each v3 ×2 and to the single v3 from earlier in the run. The scaling row loads nginx over both gateways, then nginx with gateway-2 killed (1 replica), then both again with gateway-2 restarted (the 2-replica figure is the mean of the two), then the same three runs with each gateway held to a CPU budget of its own (a cgroup CPU quota, as a Kubernetes CPU limit; needs root), then gateway-1 without nginx (the cost of the proxy hop); "box CPU busy" is the share of all cores in use during a run. Everything shares this box\'s cores.',
      'Server CPU per request: user + system time of the server process (from /proc/<pid>/stat) during the measured run over its 2xx answers (per download, push or image for the transfers); it depends little on what else the box runs, so it compares the servers even on a busy box (lower is better; the cluster, many processes, is not measured).',
      `Pull-through cache (issue 21): Distribution v3 (its own instance, filesystem) as the upstream of an embedded Lading with two proxy namespaces, one straight to it (the timed pulls) and one through @lading/testing's relay, which counts the requests reaching v3. Cold: ${opts.proxy.coldRounds} rounds, each a fresh random ${opts.proxy.blobBytes / MB} MB blob pushed to v3 and pulled once through the proxy (a miss), once from v3 and once through Distribution v3's own pull-through cache (\`proxy.remoteurl\`, a second v3 over the same upstream; also a miss), taking turns, \`sync\` before each, no client-side hashing (the proxy verifies). Warm: that blob again through the proxy vs a pushed blob of the same size from the same Lading (download job: one verified pull, then 2 timed). Single flight: ${opts.proxy.concurrentPulls} pulls started at once of a fresh ${opts.proxy.concurrentBytes / MB} MB blob, the relay counting GETs of it, beside one cold pull of another fresh blob alone. Image: a fresh image per round pulled by tag (manifest, then config and layers in turn).`,
      'Every figure\'s ratio is to Distribution v3; met? judges Lading embedded against v3 (one process each) on issue 25\'s targets; the cluster\'s and 2.8.2\'s ratios are printed beside it.',
    ];
    const table = renderText(rows);
    console.log(`\n${header.join('\n')}\n\n${table}\n`);
    await mkdir(dirname(opts.out), { recursive: true });
    await writeFile(opts.out, [`# Lading benchmark (${opts.mode})`, '', ...header.map((l) => `- ${l}`), '', renderMarkdown(rows), '', ...notes.map((n) => `- ${n}`), ''].join('\n'));
    console.log(`written to ${opts.out}`);
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
