/**
 * CNCF Distribution v3 (the reference registry) on loopback, a real upstream for the pull-through cache's specs:
 * installed once per machine by tools/distribution/install (go install through the Go module proxy),
 * run with filesystem storage in a temporary directory on 127.0.0.1 and a free port.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port';
import { REPO_ROOT } from './infra';

/** A running Distribution registry. */
export interface RunningDistribution {
  /** Its base URL, http://127.0.0.1:<port>. */
  url: string;
  /** With `basicAuth`: the one user Distribution provisioned (`docker` and a random password); else null. */
  credentials: { username: string; password: string } | null;
  /** Stops the process (SIGTERM, then SIGKILL after 5 s); its storage stays until `remove`. */
  stop(): Promise<void>;
  /** Stops it and deletes its storage. */
  remove(): Promise<void>;
}

/** The path of the `registry` binary, installed on first use (minutes on a cold machine, a stat afterwards). */
export async function installDistribution(): Promise<string> {
  const script = path.join(REPO_ROOT, 'tools', 'distribution', 'install');
  const { stdout } = await promisify(execFile)(script, [], { maxBuffer: 1024 * 1024, timeout: 15 * 60_000 });
  return stdout.trim().split('\n').pop() as string;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** How to run Distribution. */
export interface DistributionOptions {
  /**
   * HTTP Basic auth (htpasswd): Distribution provisions a missing htpasswd file with the user `docker` and a random
   * password, which it logs once; that is read from its log, so no bcrypt is needed here.
   */
  basicAuth?: boolean;
}

/** Starts Distribution on 127.0.0.1 with deletes enabled; resolves once `/v2/` answers. */
export async function startDistribution(options: DistributionOptions = {}): Promise<RunningDistribution> {
  const binary = await installDistribution();
  const dir = await mkdtemp(path.join(tmpdir(), 'lading-distribution-'));
  const port = await freePort();
  const config = [
    'version: 0.1',
    'log:',
    `  level: ${options.basicAuth ? 'warn' : 'error'}`,
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...(options.basicAuth ? ['auth:', '  htpasswd:', '    realm: lading-test', `    path: ${path.join(dir, 'htpasswd')}`] : []),
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'config.yml'), config);
  let output = '';
  let password: string | null = null;
  const child = spawn(binary, ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  const provisioned = () => (password ??= /password="?([A-Za-z0-9_-]+)/.exec(output)?.[1] ?? null);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`distribution exited at start: ${output}`);
    const up = await fetch(`${url}/v2/`).then(
      (r) => r.status === (options.basicAuth ? 401 : 200) && (!options.basicAuth || provisioned() !== null),
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      await stopProcess(child);
      throw new Error(`distribution did not answer on ${url}: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    credentials: password ? { username: 'docker', password } : null,
    stop: () => stopProcess(child),
    async remove() {
      await stopProcess(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
