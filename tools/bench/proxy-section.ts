/**
 * The benchmark's `proxy` section: Lading's pull-through cache (issue 21) against CNCF Distribution v3 as its
 * upstream, on this box in the same run. Distribution v3 holds the content; Lading embedded has two proxy namespaces
 * over it: `hub` straight to Distribution (the timed pulls: nothing between them) and `counted` through the upstream
 * relay of @lading/testing, which counts the requests that reach Distribution (the single-flight check). Every cold
 * pull is of content pushed to Distribution for it alone, so each is a true miss.
 */
import { execFileSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRegistryClient, expectAnswer } from '@lading/client';
import { startUpstreamRelay } from '@lading/testing';
import { makeImage, writeRandomFile } from './content';
import { cpuSeconds, runWorker } from './load';
import type { WorkerJob, WorkerResult } from './client-worker';
import { comparisonRow, failed, formatFigure, formatNumber, formatRatio, measured, singleFlightRow, warmPullRow, type Figure, type Row } from './report';
import { startDistribution, startDistributionProxy, startEmbedded, type RunningServer, type TargetContext } from './targets';

const MB = 1 << 20;
const HUB = 'hub';
const COUNTED = 'counted';

/** How much the proxy section moves. */
export interface ProxyShape {
  /** Cold pulls: one fresh blob per round, pulled once through the proxy and once from Distribution. */
  coldRounds: number;
  blobBytes: number;
  /** Warm pulls: turns of the cached blob through the proxy and of a pushed blob from Lading, 2 timed downloads each. */
  warmRounds: number;
  /** Concurrent cold pulls of one blob, and that blob's size. */
  concurrentPulls: number;
  concurrentBytes: number;
  /** Cold image pulls by tag: one fresh image per round, through the proxy and from Distribution. */
  imageRounds: number;
  imageLayers: number;
  imageLayerBytes: number;
}

/** What the section runs with, from the bench runner. */
export interface ProxySectionDeps {
  ctx: TargetContext;
  /** Starts a server the runner stops at the end (also on errors and Ctrl-C). */
  start(starter: () => Promise<RunningServer>): Promise<RunningServer>;
  stop(server: RunningServer): Promise<void>;
  /** Runs a measurement, printing its figure or why it failed. */
  attempt(label: string, measure: () => Promise<Figure>): Promise<Figure>;
}

/** The rounds of one measurement: each round's MB/s, and the whole (all bytes over all seconds), with server CPU. */
class Turns {
  private bytes = 0;
  private seconds = 0;
  private cpuMs = 0;
  private pulls = 0;
  private readonly rates: number[] = [];
  private failure: Figure | undefined;

  /**
   * Adds a round; `cpuMs` is the CPU time the measured server spent meanwhile (NaN where not read) over `served`
   * pulls (those timed, unless the job made more).
   */
  add(result: WorkerResult, cpuMs = NaN, served = result.operations): Figure {
    this.bytes += result.bytes;
    this.seconds += result.seconds;
    this.cpuMs += cpuMs;
    this.pulls += served;
    const rate = result.bytes / MB / result.seconds;
    this.rates.push(rate);
    return measured(rate);
  }

  /** The server's CPU time per pull (ms) over all rounds, or the first failure. */
  cpuPerPull(): Figure {
    if (this.failure) return this.failure;
    return this.pulls ? measured(this.cpuMs / this.pulls) : failed('not measured');
  }

  fail(figure: Figure): void {
    this.failure ??= figure;
  }

  /**
   * All bytes over all seconds, each round's MB/s in the note (and, `withCpu`, the server CPU per pull); the first
   * failure if any round failed.
   */
  total(what: string, withCpu = false): Figure {
    if (this.failure) return this.failure;
    if (!this.rates.length) return failed('not measured');
    const cpu = this.cpuPerPull();
    const cpuNote = withCpu && cpu.ok ? `; server CPU ${formatNumber(cpu.value)} ms per pull` : '';
    return measured(this.bytes / MB / this.seconds, `${what}; rounds ${this.rates.map(formatNumber).join(', ')}${cpuNote}`);
  }
}

/** Writes the YAML that makes `hub` a cache of `direct` and `counted` a cache of `relayed`. */
function proxyConfig(direct: string, relayed: string): string {
  return ['proxies:', `  - namespace: ${HUB}`, `    upstream: ${direct}`, `  - namespace: ${COUNTED}`, `    upstream: ${relayed}`, ''].join('\n');
}

/** A fresh random blob of `size` bytes pushed into `repo` at `base`; its file is removed afterwards. */
async function pushFreshBlob(root: string, workDir: string, base: string, repo: string, size: number): Promise<string> {
  const file = join(workDir, `proxy-${Date.now()}-${Math.random().toString(36).slice(2)}.bin`);
  try {
    const digest = await writeRandomFile(file, size);
    await runWorker(root, { kind: 'push-blob', base, repo, file, digest, size });
    return digest;
  } finally {
    await rm(file, { force: true });
  }
}

/** Pushes a fresh image (config + `layers` random layers) to `repo:latest` at `base`. */
async function pushFreshImage(base: string, repo: string, layers: number, layerBytes: number): Promise<number> {
  const image = makeImage(layerBytes, layers);
  const client = createRegistryClient({ url: base, connections: 4, timeoutMs: 600_000 });
  try {
    for (const blob of [image.config, ...image.layers]) await client.pushBlobStream(repo, blob.digest, blob.size, blob.data);
    expectAnswer(await client.putManifest(repo, 'latest', image.manifest), 201, `PUT manifest ${repo}:latest`);
  } finally {
    await client.close();
  }
  return image.layers.reduce((sum, l) => sum + l.size, image.config.size);
}

/**
 * Runs `turns` in order on even rounds and reversed on odd ones (neither side always goes first), with the box's
 * dirty pages written out before each turn (`sync`), so that no pull pays for the writeback of the one before it.
 */
async function alternate(round: number, turns: (() => Promise<void>)[]): Promise<void> {
  for (const turn of round % 2 === 0 ? turns : [...turns].reverse()) {
    execFileSync('sync');
    await turn();
  }
}

/** Measures the pull-through cache and returns its rows for the results table. */
export async function measureProxy(deps: ProxySectionDeps, shape: ProxyShape, quick: boolean): Promise<Row[]> {
  const { ctx, attempt } = deps;
  const root = ctx.root;
  const mb = (bytes: number) => `${formatNumber(bytes / MB)} MB`;
  const upstream = await deps.start(() => startDistribution(ctx, 'v3', 'proxy-upstream'));
  const relay = await startUpstreamRelay(upstream.baseUrl);
  const relayServer = await deps.start(async () => ({ name: 'upstream-relay', baseUrl: relay.url, stop: () => relay.close() }));
  let lading: RunningServer | undefined;
  let v3Proxy: RunningServer | undefined;
  try {
    // The reference for the cold pulls: Distribution v3's own pull-through cache, over the same upstream.
    v3Proxy = await deps.start(() => startDistributionProxy(ctx, upstream.baseUrl));
    const v3ProxyServer = v3Proxy;
    const configFile = join(ctx.workDir, 'embedded-proxy.yaml');
    await writeFile(configFile, proxyConfig(upstream.baseUrl, relay.url));
    lading = await deps.start(() => startEmbedded(ctx, 'embedded-proxy', { LADING_CONFIG: configFile }));
    const proxyBase = lading.baseUrl;
    const worker = (job: WorkerJob) => runWorker(root, job);
    /** Runs a job and adds it to `turns` with the CPU time `server` spent meanwhile. */
    const measuredOn = async (turns: Turns, server: RunningServer, job: WorkerJob): Promise<Figure> => {
      const before = server.pid === undefined ? NaN : cpuSeconds(server.pid);
      const result = await worker(job);
      // The download job makes one verified, untimed download before the timed ones: its CPU is in the reading.
      const served = job.kind === 'download' ? result.operations + 1 : result.operations;
      return turns.add(result, server.pid === undefined ? NaN : (cpuSeconds(server.pid) - before) * 1000, served);
    };
    const ladingServer = lading;
    const quickNote = quick ? ' (--quick: fewer rounds)' : '';
    const rows: Row[] = [];

    // 1. Cold blob pulls: each round a fresh blob in Distribution, pulled through `hub` (a miss) and straight.
    console.log(`  cold pulls: ${shape.coldRounds} round${shape.coldRounds === 1 ? '' : 's'} of a fresh ${mb(shape.blobBytes)} blob${quickNote}`);
    const coldProxy = new Turns();
    const coldDirect = new Turns();
    const coldV3Proxy = new Turns();
    let cachedDigest: string | undefined;
    for (let round = 0; round < shape.coldRounds; round++) {
      const repo = 'bench/proxied';
      const pushed = await attempt(`push fresh ${mb(shape.blobBytes)} blob to Distribution, round ${round + 1}`, async () => {
        cachedDigest = await pushFreshBlob(root, ctx.workDir, upstream.baseUrl, repo, shape.blobBytes);
        return measured(1, 'ok');
      });
      if (!pushed.ok) {
        coldProxy.fail(pushed);
        coldDirect.fail(pushed);
        coldV3Proxy.fail(pushed);
        break;
      }
      const digest = cachedDigest!;
      const job = (base: string, path: string): WorkerJob => ({ kind: 'cold-download', base, repo: path, digest, size: shape.blobBytes, concurrency: 1 });
      await alternate(round, [
        async () => {
          const f = await attempt(`cold pull through the proxy ${round + 1}/${shape.coldRounds}`, () => measuredOn(coldProxy, ladingServer, job(proxyBase, `${HUB}/${repo}`)));
          if (!f.ok) coldProxy.fail(f);
        },
        async () => {
          const f = await attempt(`pull from Distribution ${round + 1}/${shape.coldRounds}`, () => measuredOn(coldDirect, upstream, job(upstream.baseUrl, repo)));
          if (!f.ok) coldDirect.fail(f);
        },
        async () => {
          const f = await attempt(`cold pull through Distribution's own cache ${round + 1}/${shape.coldRounds}`, () => measuredOn(coldV3Proxy, v3ProxyServer, job(v3ProxyServer.baseUrl, repo)));
          if (!f.ok) coldV3Proxy.fail(f);
        },
      ]);
    }
    const rounds = `${shape.coldRounds} fresh blob${shape.coldRounds === 1 ? '' : 's'}`;
    rows.push(comparisonRow(`pull-through: cold blob GET, ${mb(shape.blobBytes)}, through the proxy (Lading) vs from the upstream (v3), ${shape.coldRounds} round${shape.coldRounds === 1 ? '' : 's'}${quickNote} (MB/s)`, '', {
      embedded: coldProxy.total(`${rounds}, each a miss`),
      distribution: coldDirect.total(rounds),
    }, 0.8));
    const v3ProxyFigure = coldV3Proxy.total(`${rounds}, each a miss`, true);
    const directFigure = coldDirect.total(rounds);
    const v3OwnRatio = v3ProxyFigure.ok && directFigure.ok ? `; ${formatRatio(v3ProxyFigure.value / directFigure.value)} of the upstream direct` : '';
    rows.push(comparisonRow(`pull-through: cold blob GET, ${mb(shape.blobBytes)}, through Lading's cache vs through Distribution v3's own pull-through cache (proxy.remoteurl) over the same upstream (MB/s)`, '', {
      embedded: coldProxy.total(`${rounds}, each a miss`),
      distribution: v3ProxyFigure.ok ? measured(v3ProxyFigure.value, `${v3ProxyFigure.note ?? ''}${v3OwnRatio}`) : v3ProxyFigure,
    }));
    rows.push(comparisonRow(`pull-through: server CPU per cold ${mb(shape.blobBytes)} pull: Lading (proxy: receive, hash, store, send) vs v3 (direct) (ms)`, '', {
      embedded: coldProxy.cpuPerPull(),
      distribution: coldDirect.cpuPerPull(),
    }, undefined, false));

    // 2. Warm pulls: the last cold round's blob, now cached, against a pushed blob of the same size in the same Lading.
    console.log(`  warm pulls: ${shape.warmRounds} round${shape.warmRounds === 1 ? '' : 's'} of 2 downloads each${quickNote}`);
    const warmProxy = new Turns();
    const ordinary = new Turns();
    const ordinaryRepo = 'bench/ordinary';
    let ordinaryDigest: string | undefined;
    const ordinaryPushed = await attempt(`push a ${mb(shape.blobBytes)} blob to Lading`, async () => {
      ordinaryDigest = await pushFreshBlob(root, ctx.workDir, proxyBase, ordinaryRepo, shape.blobBytes);
      return measured(1, 'ok');
    });
    if (!cachedDigest || !coldProxy.total('').ok) warmProxy.fail(failed('no blob was cached by the cold pulls'));
    if (!ordinaryPushed.ok) ordinary.fail(ordinaryPushed);
    for (let round = 0; round < shape.warmRounds && cachedDigest && ordinaryDigest; round++) {
      const job = (repo: string, digest: string): WorkerJob => ({ kind: 'download', base: proxyBase, repo, digest, count: 2, concurrency: 1 });
      const cached = cachedDigest;
      const pushed = ordinaryDigest;
      await alternate(round, [
        async () => {
          const f = await attempt(`warm pull through the proxy ${round + 1}/${shape.warmRounds}`, () => measuredOn(warmProxy, ladingServer, job(`${HUB}/bench/proxied`, cached)));
          if (!f.ok) warmProxy.fail(f);
        },
        async () => {
          const f = await attempt(`ordinary Lading pull ${round + 1}/${shape.warmRounds}`, () => measuredOn(ordinary, ladingServer, job(ordinaryRepo, pushed)));
          if (!f.ok) ordinary.fail(f);
        },
      ]);
    }
    rows.push(warmPullRow(`pull-through: warm blob GET, ${mb(shape.blobBytes)} (cached), vs an ordinary Lading pull, ${shape.warmRounds} round${shape.warmRounds === 1 ? '' : 's'} of 2${quickNote} (MB/s)`,
      warmProxy.total(`${2 * shape.warmRounds} downloads`, true), ordinary.total(`${2 * shape.warmRounds} downloads`, true)));

    // 3. Single flight: N clients miss one blob at once through `counted`; the relay counts the GETs that reach
    // Distribution. One cold pull of another fresh blob of the same size, alone, through the same relay, is the baseline.
    console.log(`  ${shape.concurrentPulls} concurrent cold pulls of one ${mb(shape.concurrentBytes)} blob through the counting relay`);
    const countedRepo = 'bench/counted';
    const coldJob = (digest: string, concurrency: number): WorkerJob => ({ kind: 'cold-download', base: proxyBase, repo: `${COUNTED}/${countedRepo}`, digest, size: shape.concurrentBytes, concurrency });
    const alone = await attempt('one cold pull alone', async () => {
      const digest = await pushFreshBlob(root, ctx.workDir, upstream.baseUrl, countedRepo, shape.concurrentBytes);
      execFileSync('sync');
      return measured((await worker(coldJob(digest, 1))).seconds);
    });
    let upstreamGets: Figure = failed('not measured');
    const together = await attempt(`${shape.concurrentPulls} cold pulls at once`, async () => {
      const digest = await pushFreshBlob(root, ctx.workDir, upstream.baseUrl, countedRepo, shape.concurrentBytes);
      execFileSync('sync');
      const before = relay.requests.length;
      const r = await worker(coldJob(digest, shape.concurrentPulls));
      upstreamGets = measured(relay.requests.slice(before).filter((line) => line === `GET /v2/${countedRepo}/blobs/${digest}`).length);
      return measured(r.seconds, `slowest pull ${formatNumber((r.p99Ms ?? NaN) / 1000)} s`);
    });
    if (!together.ok) upstreamGets = together;
    rows.push(singleFlightRow(`pull-through: ${shape.concurrentPulls} concurrent cold pulls of one ${mb(shape.concurrentBytes)} blob`, shape.concurrentPulls, upstreamGets, together, alone));

    // 4. Cold image pulls by tag: a fresh image per round in Distribution, pulled through `hub` and straight.
    const imageBytes = shape.imageLayers * shape.imageLayerBytes;
    console.log(`  cold image pulls: ${shape.imageRounds} round${shape.imageRounds === 1 ? '' : 's'} of a fresh image (config + ${shape.imageLayers} × ${mb(shape.imageLayerBytes)})${quickNote}`);
    const imageProxy = new Turns();
    const imageDirect = new Turns();
    for (let round = 0; round < shape.imageRounds; round++) {
      const repo = `bench/image-${round}`;
      const pushed = await attempt(`push fresh image to Distribution, round ${round + 1}`, async () => measured(await pushFreshImage(upstream.baseUrl, repo, shape.imageLayers, shape.imageLayerBytes)));
      if (!pushed.ok) {
        imageProxy.fail(pushed);
        imageDirect.fail(pushed);
        break;
      }
      await alternate(round, [
        async () => {
          const f = await attempt(`cold image pull through the proxy ${round + 1}/${shape.imageRounds}`, async () => imageProxy.add(await worker({ kind: 'image-pull-once', base: proxyBase, repo: `${HUB}/${repo}`, tag: 'latest' })));
          if (!f.ok) imageProxy.fail(f);
        },
        async () => {
          const f = await attempt(`image pull from Distribution ${round + 1}/${shape.imageRounds}`, async () => imageDirect.add(await worker({ kind: 'image-pull-once', base: upstream.baseUrl, repo, tag: 'latest' })));
          if (!f.ok) imageDirect.fail(f);
        },
      ]);
    }
    rows.push(comparisonRow(`pull-through: cold image pull by tag (manifest, config, ${shape.imageLayers} × ${mb(shape.imageLayerBytes)} layers = ${mb(imageBytes)}), through the proxy vs from the upstream, ${shape.imageRounds} round${shape.imageRounds === 1 ? '' : 's'}${quickNote} (MB/s)`, '', {
      embedded: imageProxy.total('each a miss'),
      distribution: imageDirect.total('direct'),
    }));

    // The relay's own cost, for reading the single-flight row: the cached blob straight from Distribution and through the relay.
    const viaRelay = new Turns();
    const straight = new Turns();
    if (cachedDigest) {
      const digest = cachedDigest;
      const job = (base: string): WorkerJob => ({ kind: 'cold-download', base, repo: 'bench/proxied', digest, size: shape.blobBytes, concurrency: 1 });
      await alternate(0, [
        async () => { const f = await attempt('pull from Distribution through the relay', async () => viaRelay.add(await worker(job(relay.url)))); if (!f.ok) viaRelay.fail(f); },
        async () => { const f = await attempt('pull from Distribution', async () => straight.add(await worker(job(upstream.baseUrl)))); if (!f.ok) straight.fail(f); },
      ]);
    } else {
      viaRelay.fail(failed('no blob to pull'));
    }
    const relayFigure = viaRelay.total('1 pull');
    const straightFigure = straight.total('1 pull');
    const relayRatio = relayFigure.ok && straightFigure.ok ? relayFigure.value / straightFigure.value : undefined;
    rows.push({
      metric: `counting relay's cost: ${mb(shape.blobBytes)} blob GET from Distribution through the relay vs straight (MB/s; the timed proxy rows do not pass it)`,
      cells: { distribution: `${formatFigure(relayFigure)} through the relay; ${formatFigure(straightFigure)} straight` },
      ratio: relayRatio === undefined ? '—' : `relay/straight ${formatRatio(relayRatio)}`,
      target: 'informational',
      met: '',
    });
    return rows;
  } finally {
    if (lading) await deps.stop(lading);
    if (v3Proxy) await deps.stop(v3Proxy);
    await deps.stop(relayServer);
    await deps.stop(upstream);
  }
}
