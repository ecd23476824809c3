/**
 * The Docker client through the pull-through cache: a private dockerd (tools/clients/dockerd.sh, root) started with
 * `--registry-mirror` pointing at an embedded Lading whose `mirror.namespace` is a proxy of a real CNCF Distribution
 * v3. tools/clients/docker-mirror.sh pushes an image into Distribution and pulls it back through Lading both as a
 * Docker Hub name (through the mirror) and as `<lading>/hub/library/<name>` (through the namespace).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseConfig } from '@lading/config';
import { createLogger } from '@lading/telemetry';
import { REPO_ROOT, type RunningDistribution, startDistribution } from '@lading/testing';
import { type EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';

const run = promisify(execFile);
const DOCKERD = path.join(REPO_ROOT, 'tools', 'clients', 'dockerd.sh');
const SCRIPT = path.join(REPO_ROOT, 'tools', 'clients', 'docker-mirror.sh');

describe('docker pulls through the mirror and the proxy namespace', () => {
  let distribution: RunningDistribution;
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  let lading: string;
  let daemon: { DOCKER_HOST: string; DOCKERD_DIR: string } | undefined;

  beforeAll(async () => {
    distribution = await startDistribution();
    dir = await mkdtemp(path.join(tmpdir(), 'lading-docker-mirror-'));
    const settings = { proxies: [{ namespace: 'hub', upstream: distribution.url }], mirror: { namespace: 'hub' }, gc: { enabled: false } };
    registry = await createEmbeddedRegistry(parseConfig({ ...settings, data: { dir }, log: { level: 'silent', access: false } }), createLogger({ service: 'test', level: 'silent' }));
    server = registry.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    lading = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { stdout } = await run(DOCKERD, ['start'], { env: { ...process.env, DOCKERD_REGISTRY_MIRROR: `http://${lading}` }, timeout: 60_000 });
    daemon = Object.fromEntries(stdout.trim().split(/\s+/).map((pair) => pair.split('=', 2))) as typeof daemon;
  }, 15 * 60_000);

  afterAll(async () => {
    if (daemon) await run(DOCKERD, ['stop', daemon.DOCKERD_DIR], { timeout: 60_000 }).catch(() => undefined);
    server?.closeAllConnections();
    if (server) await new Promise((resolve) => server.close(resolve));
    await registry?.close();
    await distribution?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('pulls library/<name> through --registry-mirror and hub/library/<name> by name, both the built image', async () => {
    const upstream = distribution.url.replace(/^https?:\/\//, '');
    const answer = await run(SCRIPT, [lading, upstream, 'hub'], { env: { ...process.env, DOCKER_HOST: daemon?.DOCKER_HOST }, timeout: 180_000 }).catch(
      (err: { stdout?: string; stderr?: string }) => ({ stdout: `${err.stdout ?? ''}${err.stderr ?? ''}`, stderr: '' }),
    );
    expect(answer.stdout).toMatch(/^clients: \d+ passed, 0 failed$/m);
    expect(answer.stdout).not.toMatch(/^FAIL/m);
  }, 200_000);
});
