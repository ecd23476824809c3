/**
 * The servers the benchmark measures, each started on 127.0.0.1 and stopped by whoever started it: CNCF Distribution
 * v3 (alone, and 2 replicas behind nginx) and 2.8.2 (Debian's docker-registry), each installed when missing, Lading
 * embedded, the Lading cluster (under the cluster lock), the raw node:http ceiling, and a sink for OTLP traces.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bundle, serviceBundle, startCommand } from '../build/bundle';
import { clusterPorts } from '../cluster/ports';
import { infraAnswers, infraSettings } from './infra-env';
import { clusterS3Settings, createScratchBucket, type S3Settings, type ScratchBucket } from './scratch-bucket';

const run = promisify(execFile);

/** A running server: where to reach it, its process id when it has one of its own, and how to stop it. */
export interface RunningServer {
  name: string;
  baseUrl: string;
  pid?: number;
  stop(): Promise<void>;
  /**
   * Turns blob GETs' redirects to presigned URLs on or off (restarting what serves them), for a registry that
   * redirects by default (the cluster, v3 ×2 on MinIO); absent where there is nothing to turn.
   */
  redirects?(on: boolean): Promise<void>;
}

/** Where the servers' files go and which repository checkout they run from. */
export interface TargetContext {
  /** The repository root (where `services/` and `tools/` are). */
  root: string;
  /** A temporary directory owned by this benchmark run. */
  workDir: string;
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `url` until it answers 200, the process exits, or `timeoutMs` passes. */
async function waitReady(name: string, url: string, child: ChildProcess | undefined, logFile: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} during start-up: ${tail(logFile)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`${name} was not ready at ${url} after ${timeoutMs / 1000}s: ${tail(logFile)}`);
}

function tail(logFile: string): string {
  try {
    return readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join(' / ') || '(empty log)';
  } catch {
    return '(no log)';
  }
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`. */
async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Starts a server process with its output in `<workDir>/<name>.log` and waits until `readyPath` answers 200. */
async function startProcess(ctx: TargetContext, name: string, command: string, args: string[], env: NodeJS.ProcessEnv, port: number, readyPath = '/v2/'): Promise<RunningServer> {
  const logFile = join(ctx.workDir, `${name}.log`);
  const log = openSync(logFile, 'a');
  const child = spawn(command, args, { cwd: ctx.root, env, stdio: ['ignore', log, log] });
  closeSync(log);
  const server: RunningServer = { name, baseUrl: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => stopChild(child) };
  try {
    await waitReady(name, `${server.baseUrl}${readyPath}`, child, logFile);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

const DEBIAN_DISTRIBUTION_BIN = '/usr/bin/docker-registry';

/** A release of CNCF Distribution the benchmark runs: v3 (built by tools/distribution/install, the anchor) or Debian's 2.8.2. */
export type DistributionRelease = 'v3' | '2.8';

/** Installs Debian's docker-registry (CNCF Distribution 2.8) when it is missing; needs root and apt-get. */
async function ensureDebianDistribution(): Promise<string> {
  if (existsSync(DEBIAN_DISTRIBUTION_BIN)) return DEBIAN_DISTRIBUTION_BIN;
  if (process.getuid?.() !== 0) throw new Error(`${DEBIAN_DISTRIBUTION_BIN} is missing; install the Debian package docker-registry`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await run('apt-get', ['install', '-y', '-q', 'docker-registry'], { env });
  } catch {
    await run('apt-get', ['update', '-q'], { env });
    await run('apt-get', ['install', '-y', '-q', 'docker-registry'], { env });
  }
  // The package may start its own service on :5000; the benchmark runs its own instance.
  await run('service', ['docker-registry', 'stop']).catch(() => undefined);
  return DEBIAN_DISTRIBUTION_BIN;
}

/** The binary of a Distribution release, installed first when missing (v3: `go install` once per pin, minutes). */
export async function ensureDistribution(ctx: TargetContext, release: DistributionRelease): Promise<string> {
  if (release === '2.8') return ensureDebianDistribution();
  const { stdout } = await run(join(ctx.root, 'tools/distribution/install'), [], { cwd: ctx.root, timeout: 1_800_000 });
  return stdout.trim();
}

/** A Distribution release's version line (installing it first when missing). */
export async function distributionVersion(ctx: TargetContext, release: DistributionRelease): Promise<string> {
  const { stdout } = await run(await ensureDistribution(ctx, release), ['--version']);
  return stdout.trim();
}

/** The `storage:` driver section of Distribution's configuration: the filesystem under a directory. */
function filesystemStorage(rootDirectory: string): string[] {
  return ['  filesystem:', `    rootdirectory: ${rootDirectory}`];
}

/**
 * The `storage:` driver section for S3 (v3's `s3` driver) on MinIO: path-style requests, plain HTTP to the endpoint;
 * blob GETs answer with a redirect to a presigned MinIO URL (Distribution's default), as the cluster's do.
 */
function s3Storage(settings: S3Settings, bucket: string): string[] {
  return [
    '  s3:',
    `    regionendpoint: ${settings.endpoint}`,
    `    region: ${settings.region}`,
    `    bucket: ${bucket}`,
    `    accesskey: ${settings.accessKey}`,
    `    secretkey: ${settings.secretKey}`,
    '    forcepathstyle: true',
    `    secure: ${new URL(settings.endpoint).protocol === 'https:'}`,
  ];
}

/**
 * Distribution's configuration at its fastest: the given storage driver, no access log, in-memory blob-descriptor
 * cache, deletes enabled; `secret` (http.secret) signs upload state, and replicas that share uploads need the same
 * one (without it each process makes up its own).
 */
function distributionConfig(port: number, storage: string[], secret?: string, proxyOf?: string, redirect = true): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    ...storage,
    ...(redirect ? [] : ['  redirect:', '    disable: true']),
    '  cache:',
    '    blobdescriptor: inmemory',
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...(secret ? [`  secret: ${secret}`] : []),
    ...(proxyOf ? ['proxy:', `  remoteurl: ${proxyOf}`] : []),
    '',
  ].join('\n');
}

/**
 * Distribution's environment. v3.0.0 wraps every request in OpenTelemetry tracing with no setting to turn it off;
 * `OTEL_TRACES_EXPORTER=none` keeps it from exporting (it would post spans to localhost:4318 otherwise), which is as
 * far off as it goes.
 */
const DISTRIBUTION_ENV = { PATH: process.env.PATH, OTEL_TRACES_EXPORTER: 'none' };

/**
 * Starts a CNCF Distribution release at its fastest (see distributionConfig) on the filesystem in a temp dir; `name`
 * (default: the release's target name) names its log, configuration and data directory.
 */
export async function startDistribution(ctx: TargetContext, release: DistributionRelease, name = release === 'v3' ? 'distribution' : 'distribution-2.8'): Promise<RunningServer> {
  const bin = await ensureDistribution(ctx, release);
  const port = await freePort();
  const config = join(ctx.workDir, `${name}.yml`);
  await writeFile(config, distributionConfig(port, filesystemStorage(join(ctx.workDir, name))));
  return startProcess(ctx, name, bin, ['serve', config], DISTRIBUTION_ENV, port);
}

/** Where replicas of Distribution v3 keep their data: one filesystem, or a bucket on the cluster's MinIO. */
export type ReplicaStorage = 'filesystem' | 's3';

/**
 * Starts what the cluster is compared with: 2 replicas of Distribution v3 on one storage (a temp dir, or a bucket
 * of their own on the cluster's MinIO, removed at stop), with one shared `http.secret` so that an upload begun on
 * one replica goes on at the other, behind nginx with the settings tools/cluster puts in front of the gateways (one
 * file writes both: tools/cluster/nginx-conf). Several processes, so no pid: its CPU is not read.
 */
export async function startDistributionReplicas(ctx: TargetContext, storage: ReplicaStorage): Promise<RunningServer> {
  const bin = await ensureDistribution(ctx, 'v3');
  const nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((file) => existsSync(file));
  if (!nginx) throw new Error('nginx is missing; install the Debian package nginx-light (tools/cluster does)');
  const name = storage === 's3' ? 'distribution-x2-s3' : 'distribution-x2';
  const secret = randomBytes(32).toString('hex');
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  try {
    let driver: string[];
    if (storage === 's3') {
      const settings = clusterS3Settings(ctx.root);
      const bucket = await createScratchBucket(settings);
      stops.push(() => bucket.remove());
      driver = s3Storage(settings, bucket.name);
    } else {
      driver = filesystemStorage(join(ctx.workDir, name));
    }
    // The replicas, started again (same ports, nginx untouched) when redirects are turned.
    const replicas: { name: string; port: number; server?: RunningServer }[] = [];
    const startReplicas = async (redirect: boolean) => {
      for (const replica of replicas) {
        const config = join(ctx.workDir, `${replica.name}.yml`);
        await writeFile(config, distributionConfig(replica.port, driver, secret, undefined, redirect));
        replica.server = await startProcess(ctx, replica.name, bin, ['serve', config], DISTRIBUTION_ENV, replica.port);
      }
    };
    const stopReplicas = async () => {
      for (const replica of replicas) await replica.server?.stop();
    };
    for (const replica of [`${name}-1`, `${name}-2`]) {
      let port: number;
      do port = await freePort(); while (replicas.some((r) => r.port === port));
      replicas.push({ name: replica, port });
    }
    stops.push(stopReplicas);
    await startReplicas(true);
    const port = await freePort();
    const prefix = join(ctx.workDir, `${name}-nginx`);
    await mkdir(join(prefix, 'logs'), { recursive: true });
    await mkdir(join(prefix, 'tmp'), { recursive: true });
    const { stdout: conf } = await run(join(ctx.root, 'tools/cluster/nginx-conf'), [
      prefix, join(ctx.workDir, `${name}-nginx.log`), `listen 127.0.0.1:${port};`, ...replicas.map((r) => `127.0.0.1:${r.port}`),
    ]);
    await writeFile(join(prefix, 'nginx.conf'), conf);
    const lb = await startProcess(ctx, `${name}-nginx`, nginx, ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { PATH: process.env.PATH }, port);
    stops.push(() => lb.stop());
    // On the filesystem v3 has no redirects to turn.
    const redirects = storage === 's3'
      ? async (on: boolean) => {
          await stopReplicas();
          await startReplicas(on);
        }
      : undefined;
    return { name, baseUrl: lb.baseUrl, stop: stopAll, ...(redirects ? { redirects } : {}) };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * Starts Lading embedded (one process, run as `npm start` runs it, the bundle rebuilt first) on a free port with a fresh
 * data directory; `env` adds settings, `cpus` pins it (taskset's list). `LADING_STORAGE_FSYNC` passes through from the
 * bench's own environment, so `LADING_STORAGE_FSYNC=false npm run bench …` measures what the flushes cost.
 */
export async function startEmbedded(ctx: TargetContext, name: string, env: Record<string, string> = {}, cpus?: string): Promise<RunningServer> {
  const port = await freePort();
  await bundle(serviceBundle('embedded', ctx.root));
  const [, ...args] = startCommand(ctx.root);
  // Pinned to `cpus` (taskset's list, e.g. "0" or "0,1"), its threads included, when given.
  const [command, commandArgs] = cpus ? ['taskset', ['-c', cpus, process.execPath, ...args]] : [process.execPath, args];
  return startProcess(ctx, name, command, commandArgs, {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LADING_HTTP_ADDR: `127.0.0.1:${port}`,
    LADING_DATA_DIR: join(ctx.workDir, name),
    LADING_LOG_ACCESS: 'false',
    LADING_LOG_LEVEL: 'warn',
    ...(process.env.LADING_STORAGE_FSYNC ? { LADING_STORAGE_FSYNC: process.env.LADING_STORAGE_FSYNC } : {}),
    ...env,
  }, port);
}

/** Starts the raw node:http ceiling serving `manifestFile` at `path`. */
export async function startCeiling(ctx: TargetContext, path: string, manifestFile: string, mediaType: string, digest: string): Promise<RunningServer> {
  const port = await freePort();
  return startProcess(ctx, 'ceiling', process.execPath, ['--import', 'tsx', 'tools/bench/ceiling-server.ts', String(port), path, manifestFile, mediaType, digest], { PATH: process.env.PATH }, port);
}

/**
 * Starts Distribution v3 as a pull-through cache of `upstream` (its whole-registry `proxy.remoteurl` mode, on a
 * filesystem of its own): the reference the Lading cache's cold pulls are read against.
 */
export async function startDistributionProxy(ctx: TargetContext, upstream: string, name = 'distribution-proxy'): Promise<RunningServer> {
  const bin = await ensureDistribution(ctx, 'v3');
  const port = await freePort();
  const config = join(ctx.workDir, `${name}.yml`);
  await writeFile(config, distributionConfig(port, filesystemStorage(join(ctx.workDir, name)), undefined, upstream));
  return startProcess(ctx, name, bin, ['serve', config], DISTRIBUTION_ENV, port);
}

/**
 * Whether Postgres, Kafka and MinIO are up for the cluster: tools/infra reports them running (its status exits 0
 * only then), or they answer where `.infra/env` puts them (started from another checkout on this machine).
 */
export async function infraRunning(ctx: TargetContext): Promise<boolean> {
  try {
    await run(join(ctx.root, 'tools/infra/infra'), ['status'], { cwd: ctx.root });
    return true;
  } catch {
    return infraAnswers(infraSettings(ctx.root));
  }
}

/** Takes /tmp/lading-cluster.lock (waiting up to `waitS`) and holds it until release() or this process ends. */
async function takeClusterLock(waitS: number): Promise<{ release(): Promise<void> }> {
  const holder = spawn('flock', ['-w', String(waitS), '/tmp/lading-cluster.lock', 'sh', '-c', 'echo locked; read _'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const locked = await new Promise<boolean>((resolve) => {
    holder.stdout?.on('data', (data: Buffer) => { if (data.toString().includes('locked')) resolve(true); });
    holder.once('exit', () => resolve(false));
  });
  if (!locked) throw new Error(`could not take /tmp/lading-cluster.lock within ${waitS}s (another cluster user holds it)`);
  return {
    async release() {
      const exited = new Promise<void>((resolve) => (holder.exitCode !== null ? resolve() : holder.once('exit', () => resolve())));
      holder.stdin?.end();
      await exited;
    },
  };
}

/** Kills one cluster process (`tools/cluster/cluster kill NAME`); only while this run holds the cluster lock. */
export async function killClusterProcess(ctx: TargetContext, name: string): Promise<void> {
  await run(join(ctx.root, 'tools/cluster/cluster'), ['kill', name], { cwd: ctx.root });
}

/** Starts one process of the running cluster again (after `killClusterProcess`) and waits until it is ready. */
export async function startClusterProcess(ctx: TargetContext, name: string): Promise<void> {
  const env = { ...process.env, LADING_LOG_ACCESS: 'false', LADING_LOG_LEVEL: 'warn' };
  await run(join(ctx.root, 'tools/cluster/cluster'), ['start', name], { cwd: ctx.root, env });
}

/** One cluster process's address in tools/cluster's layout, for loading a gateway without the load balancer. */
export function clusterAddress(ctx: TargetContext, name: string): string {
  const port = clusterPorts(ctx.root)[name];
  if (port === undefined) throw new Error(`no cluster process named ${name}`);
  return `http://127.0.0.1:${port}`;
}

/**
 * Brings the distributed cluster up under the cluster lock, on a bucket of its own on the shared MinIO (every push
 * stores a new 256 MB blob, which nothing would collect for a day); stop() brings it down, removes the bucket and
 * releases the lock.
 */
export async function startCluster(ctx: TargetContext, logLine: (line: string) => void): Promise<RunningServer> {
  if (!(await infraRunning(ctx))) throw new Error('infrastructure is not running (tools/infra/infra status, nor answering where .infra/env says)');
  const lock = await takeClusterLock(600);
  const cluster = join(ctx.root, 'tools/cluster/cluster');
  let bucket: ScratchBucket | undefined;
  try {
    bucket = await createScratchBucket(clusterS3Settings(ctx.root));
  } catch (error) {
    await lock.release();
    throw error;
  }
  const env = { ...process.env, LADING_LOG_ACCESS: 'false', LADING_LOG_LEVEL: 'warn', LADING_STORAGE_BUCKET: bucket.name };
  const down = async () => {
    try {
      await run(cluster, ['down'], { cwd: ctx.root, env });
      await bucket?.remove();
    } finally {
      await lock.release();
    }
  };
  try {
    const { stdout } = await run(cluster, ['up'], { cwd: ctx.root, env, timeout: 180_000 });
    const url = /LADING_URL=(\S+)/.exec(stdout)?.[1];
    if (!url) throw new Error(`cluster up printed no LADING_URL: ${stdout.slice(-300)}`);
    logLine(stdout.trim().split('\n').slice(-2, -1)[0] ?? '');
    // Blob GETs are answered by the blob services: restarted with storage.redirect set, they redirect or stream.
    const redirects = async (on: boolean) => {
      for (const name of ['blob-1', 'blob-2']) {
        await killClusterProcess(ctx, name);
        await run(cluster, ['start', name], { cwd: ctx.root, env: { ...env, LADING_STORAGE_REDIRECT: String(on) } });
      }
    };
    return { name: 'cluster', baseUrl: url, stop: down, redirects };
  } catch (error) {
    await down();
    throw error;
  }
}

/** A sink for OTLP/HTTP traces in this process: accepts POST /v1/traces, discards the body, counts requests. */
export async function startOtlpSink(): Promise<RunningServer & { received(): number }> {
  let received = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') received++;
      res.writeHead(req.method === 'POST' ? 200 : 404, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    name: 'otlp-sink',
    baseUrl: `http://127.0.0.1:${port}`,
    received: () => received,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The pid of one running cluster process (from `tools/cluster/cluster status`). */
export async function clusterPid(ctx: TargetContext, name: string): Promise<number> {
  const { stdout } = await run(join(ctx.root, 'tools/cluster/cluster'), ['status'], { cwd: ctx.root });
  const pid = new RegExp(`^${name}: running \\(pid (\\d+)\\)`, 'm').exec(stdout)?.[1];
  if (!pid) throw new Error(`${name} is not running`);
  return Number(pid);
}

/**
 * Holds chosen processes to a CPU budget each, as a Kubernetes CPU limit holds a pod: every process gets a control
 * group of its own in the kernel's `cpu` controller (cgroup v1 `cfs_quota_us`, or v2 `cpu.max`). Needs root.
 */
export interface CpuLimiter {
  /** Moves `pid` (all its threads) into the group `name`, created with the budget if new. */
  limit(name: string, pid: number): Promise<void>;
  /** Removes the groups (their processes go back to the root group). */
  release(): Promise<void>;
}

const CGROUP_V1_CPU = '/sys/fs/cgroup/cpu';
const CGROUP_V2 = '/sys/fs/cgroup';
const CFS_PERIOD_US = 100_000;

/** A limiter giving each process `cores` of CPU time; throws when the kernel's cpu controller is not writable here. */
export async function createCpuLimiter(cores: number): Promise<CpuLimiter> {
  const v1 = existsSync(join(CGROUP_V1_CPU, 'cpu.cfs_quota_us'));
  const root = v1 ? CGROUP_V1_CPU : CGROUP_V2;
  if (!v1 && !readFileSafe(join(CGROUP_V2, 'cgroup.controllers')).split(/\s+/).includes('cpu')) {
    throw new Error('no cgroup cpu controller on this machine');
  }
  const quota = Math.round(cores * CFS_PERIOD_US);
  const groups = new Map<string, string>();
  return {
    async limit(name, pid) {
      let dir = groups.get(name);
      if (!dir) {
        dir = join(root, `lading-bench-${process.pid}-${name}`);
        await mkdir(dir, { recursive: true });
        if (v1) {
          await writeFile(join(dir, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
          await writeFile(join(dir, 'cpu.cfs_quota_us'), String(quota));
        } else {
          await writeFile(join(dir, 'cpu.max'), `${quota} ${CFS_PERIOD_US}`);
        }
        groups.set(name, dir);
      }
      await writeFile(join(dir, 'cgroup.procs'), String(pid));
    },
    async release() {
      for (const dir of groups.values()) {
        for (const pid of readFileSafe(join(dir, 'cgroup.procs')).split('\n').filter(Boolean)) {
          await writeFile(join(root, 'cgroup.procs'), pid).catch(() => undefined);
        }
        await rmdir(dir).catch(() => undefined);
      }
      groups.clear();
    },
  };
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
