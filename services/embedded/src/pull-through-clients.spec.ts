/**
 * Real clients through the pull-through cache: skopeo, crane, a private dockerd (tools/clients/dockerd.sh) and a
 * private containerd (tools/clients/containerd.sh), both needing root, pull from an embedded Lading whose proxy
 * namespace `hub` (also its Docker Hub mirror namespace) caches a CNCF Distribution v3 behind basic auth, Lading
 * holding the upstream's username and password. tools/clients/pull-through.sh seeds the upstream (three multi-arch
 * indexes and two images with a 200 MiB layer, one for crane and one for docker), pulls everything through `hub`
 * cold and warm, and, once the upstream is stopped here, pulls it all again from what Lading stored; every digest is
 * checked against the upstream's.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { parseConfig } from '@lading/config';
import { createLogger } from '@lading/telemetry';
import { REPO_ROOT, type RunningDistribution, startDistribution } from '@lading/testing';
import { type EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';

const execFileAsync = promisify(execFile);
const DOCKERD = path.join(REPO_ROOT, 'tools', 'clients', 'dockerd.sh');
const CONTAINERD = path.join(REPO_ROOT, 'tools', 'clients', 'containerd.sh');
const SCRIPT = path.join(REPO_ROOT, 'tools', 'clients', 'pull-through.sh');

describe('skopeo, crane, docker and containerd pull through the cache of a Distribution behind basic auth', () => {
  let distribution: RunningDistribution;
  let credentials: { username: string; password: string };
  let dir: string;
  let state: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  let lading: string;
  let daemon: { DOCKER_HOST: string; DOCKERD_DIR: string } | undefined;
  let containerd: { CONTAINERD_ADDRESS: string; CONTAINERD_DIR: string } | undefined;
  const lines: string[] = [];

  /** One phase of pull-through.sh: its whole output (stdout and stderr), whatever its exit status. */
  async function phase(name: 'seed' | 'pull' | 'cached'): Promise<string> {
    const upstream = distribution.url.replace(/^https?:\/\//, '');
    const env = {
      ...process.env,
      UPSTREAM_USERNAME: credentials.username,
      UPSTREAM_PASSWORD: credentials.password,
      DOCKER_HOST: daemon?.DOCKER_HOST ?? '',
      CONTAINERD_ADDRESS: containerd?.CONTAINERD_ADDRESS ?? '',
    };
    const answer = await execFileAsync(SCRIPT, [name, state, lading, upstream, 'hub'], { env, timeout: 600_000, maxBuffer: 16 * 1024 * 1024 }).catch(
      (err: { stdout?: string; stderr?: string }) => ({ stdout: `${err.stdout ?? ''}${err.stderr ?? ''}`, stderr: '' }),
    );
    return `${answer.stdout}${answer.stderr}`;
  }

  beforeAll(async () => {
    distribution = await startDistribution({ basicAuth: true });
    credentials = distribution.credentials as { username: string; password: string };
    dir = await mkdtemp(path.join(tmpdir(), 'lading-pull-clients-'));
    state = await mkdtemp(path.join(tmpdir(), 'lading-pull-clients-state-'));
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const settings = { proxies: [{ namespace: 'hub', upstream: distribution.url, ...credentials }], mirror: { namespace: 'hub' }, gc: { enabled: false } };
    const logger = createLogger({ service: 'registry', level: 'debug', destination });
    registry = await createEmbeddedRegistry(parseConfig({ ...settings, data: { dir }, log: { level: 'debug', access: true } }), logger);
    server = registry.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    lading = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { stdout } = await execFileAsync(DOCKERD, ['start'], { timeout: 15 * 60_000 });
    daemon = Object.fromEntries(stdout.trim().split(/\s+/).map((pair) => pair.split('=', 2))) as typeof daemon;
    const started = await execFileAsync(CONTAINERD, ['start'], { timeout: 15 * 60_000 });
    containerd = Object.fromEntries(started.stdout.trim().split(/\s+/).map((pair) => pair.split('=', 2))) as typeof containerd;
  }, 20 * 60_000);

  afterAll(async () => {
    if (daemon) await execFileAsync(DOCKERD, ['stop', daemon.DOCKERD_DIR], { timeout: 60_000 }).catch(() => undefined);
    if (containerd) await execFileAsync(CONTAINERD, ['stop', containerd.CONTAINERD_DIR], { timeout: 60_000 }).catch(() => undefined);
    if (server) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await registry?.close();
    await distribution?.remove();
    for (const d of [dir, state]) if (d) await rm(d, { recursive: true, force: true });
  }, 120_000);

  it('pulls multi-arch indexes and a 200 MiB layer cold and warm, every digest the upstream’s', async () => {
    const seeded = await phase('seed');
    expect(seeded).toMatch(/^clients: \d+ passed, 0 failed$/m);
    const pulled = await phase('pull');
    expect(pulled).toMatch(/^clients: \d+ passed, 0 failed$/m);
    expect(pulled).not.toMatch(/^FAIL/m);
    expect(pulled).toMatch(/^ok +docker \(warm\): its layer's diff id is the upstream's$/m);
    expect(pulled).toMatch(/^ok +ctr \(warm\): the content store holds every blob of it/m);
  }, 15 * 60_000);

  it('serves all of it again from the cache once the upstream is stopped', async () => {
    await distribution.stop();
    const cached = await phase('cached');
    expect(cached).toMatch(/^clients: \d+ passed, 0 failed$/m);
    expect(cached).not.toMatch(/^FAIL/m);
    expect(cached).toMatch(/^ok +docker \(upstream stopped\): its layer's diff id is the upstream's$/m);
    expect(cached).toMatch(/^ok +ctr \(upstream stopped\): the content store holds every blob of it/m);
  }, 15 * 60_000);

  it('never writes the upstream password, nor the Basic header carrying it, to the log', () => {
    const log = lines.join('');
    // The capture works: the pulls above are in it.
    expect(log).toContain('/v2/hub/library/big/blobs/sha256:');
    const basic = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
    expect(log).not.toContain(credentials.password);
    expect(log).not.toContain(basic.replace(/=+$/, ''));
  });
});
