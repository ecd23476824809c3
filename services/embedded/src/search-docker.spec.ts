/**
 * `docker search` against an embedded Lading with auth on, through a private dockerd (tools/clients/dockerd.sh,
 * root, its own socket directory): the daemon pings /v1/_ping, calls /v1/search without credentials (as it does for
 * any registry but Docker Hub), and prints what an anonymous caller may see: the public namespaces only.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { parseConfig } from '@lading/config';
import { createLogger } from '@lading/telemetry';
import { REPO_ROOT, imageManifest, makeBlob } from '@lading/testing';
import { type EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';

const run = promisify(execFile);
const DOCKERD = path.join(REPO_ROOT, 'tools', 'clients', 'dockerd.sh');
const ROOT = { user: 'root', password: 'root-password-0' };
const basic = `Basic ${Buffer.from(`${ROOT.user}:${ROOT.password}`).toString('base64')}`;

describe('docker search', () => {
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  let url: string;
  let lading: string;
  let daemon: { DOCKER_HOST: string; DOCKERD_DIR: string } | undefined;
  let docker: string;

  /** Pushes a one-layer image whose config carries `description` as its OCI description label. */
  async function push(token: string, repo: string, description: string): Promise<void> {
    const config = makeBlob(JSON.stringify({ os: 'linux', architecture: 'amd64', config: { Labels: { 'org.opencontainers.image.description': description } } }));
    const layer = makeBlob(128);
    for (const blob of [config, layer]) {
      await request(url).post(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`).set('Authorization', token).set('Content-Type', 'application/octet-stream').send(blob.data).expect(201);
    }
    const manifest = imageManifest(config, [layer]);
    await request(url).put(`/v2/${repo}/manifests/latest`).set('Authorization', token).set('Content-Type', manifest.mediaType).send(manifest.body.toString()).expect(201);
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-docker-search-'));
    const config = parseConfig({ data: { dir }, auth: { enabled: true }, admin: ROOT, gc: { enabled: false }, log: { level: 'silent', access: false } });
    registry = await createEmbeddedRegistry(config, createLogger({ service: 'test', level: 'silent' }));
    server = registry.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    lading = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    url = `http://${lading}`;
    await request(url).post('/admin/v1/namespaces').set('Authorization', basic).send({ prefix: 'public', public: true }).expect(201);
    await request(url).post('/admin/v1/namespaces').set('Authorization', basic).send({ prefix: 'private' }).expect(201);
    const scopes = ['public/postgres', 'public/postgres-exporter', 'private/postgres'].map((r) => `scope=repository:${r}:pull,push`).join('&');
    const token = `Bearer ${(await request(url).get(`/token?service=lading&${scopes}`).set('Authorization', basic).expect(200)).body.token}`;
    await push(token, 'public/postgres', 'The PostgreSQL database');
    await push(token, 'public/postgres-exporter', 'Prometheus exporter for PostgreSQL');
    await push(token, 'private/postgres', 'Not for strangers');
    const { stdout } = await run(DOCKERD, ['start'], { env: process.env, timeout: 120_000 });
    daemon = Object.fromEntries(stdout.trim().split(/\s+/).map((pair) => pair.split('=', 2))) as typeof daemon;
    docker = (await run(DOCKERD, ['cli'])).stdout.trim();
  }, 15 * 60_000);

  afterAll(async () => {
    if (daemon) await run(DOCKERD, ['stop', daemon.DOCKERD_DIR], { timeout: 60_000 }).catch(() => undefined);
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await registry?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('lists the public repositories that match, ranked, with their descriptions, and none of the private ones', async () => {
    const { stdout } = await run(docker, ['search', '--no-trunc', '--format', '{{.Name}}\t{{.Description}}', `${lading}/postgres`], {
      env: { ...process.env, DOCKER_HOST: daemon?.DOCKER_HOST },
      timeout: 60_000,
    });
    expect(stdout.trim().split('\n')).toEqual(['public/postgres\tThe PostgreSQL database', 'public/postgres-exporter\tPrometheus exporter for PostgreSQL']);
  }, 90_000);

  it('passes --limit to the registry as n', async () => {
    const { stdout } = await run(docker, ['search', '--limit', '1', '--format', '{{.Name}}', `${lading}/postgres`], {
      env: { ...process.env, DOCKER_HOST: daemon?.DOCKER_HOST },
      timeout: 60_000,
    });
    expect(stdout.trim()).toBe('public/postgres');
  }, 90_000);
});
