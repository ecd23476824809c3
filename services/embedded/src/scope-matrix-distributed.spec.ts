/**
 * The mount columns of the scope matrix again, behind the distributed gateway: its real process (services/gateway
 * main.ts) proxying over HTTP to the auth, blob and manifest services, which run here on loopback over one PGlite.
 * A mount whose source the token does not grant must become a plain upload there too, where the request the
 * services see is the one the proxy forwards, not the one the gateway rewrote in memory.
 */
import { ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Express } from 'express';
import { hashPassword } from '@lading/access';
import { createAuthService } from '@lading/auth';
import { createBlobService } from '@lading/blob';
import { createManifestService } from '@lading/manifest';
import * as meta from '@lading/metadata';
import { TestBlob, TestDeps, createTestDeps, freePort, makeBlob } from '@lading/testing';
import { parseChallenge } from '../test/scope-matrix-client';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

async function listen(app: Express | http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(app as http.RequestListener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}


describe('scope matrix behind the distributed gateway', () => {
  let deps: TestDeps;
  const servers: http.Server[] = [];
  let gateway: ChildProcess;
  let gatewayUrl: string;
  let gatewayLog = '';
  const secretBlob: TestBlob = makeBlob('only in secret/app');
  const publicBlob: TestBlob = makeBlob('in public/src, readable by all');

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true } });
    const logger = deps.logger;
    const auth = await listen(createAuthService({ db: deps.db, config: deps.config, logger }).app);
    const blob = await listen(createBlobService({ db: deps.db, store: deps.store, config: deps.config, logger, events: deps.events }));
    const manifest = await listen(createManifestService({ db: deps.db, config: deps.config, logger, events: deps.events }));
    servers.push(auth.server, blob.server, manifest.server);

    await meta.createUser(deps.db, 'pusher', await hashPassword('pusher-password'), false);
    await meta.upsertNamespace(deps.db, 'team', false);
    await meta.upsertNamespace(deps.db, 'secret', false);
    await meta.upsertNamespace(deps.db, 'public', true);
    await meta.addGrant(deps.db, 'team', 'user', 'pusher', 'push');
    // Content put straight into the blob service, behind the gateway's back.
    for (const [repo, b] of [['secret/app', secretBlob], ['public/src', publicBlob]] as const) {
      const res = await fetch(`${blob.url}/v2/${repo}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.data, headers: { 'content-type': 'application/octet-stream' } });
      expect(res.status).toBe(201);
    }

    const port = await freePort();
    gatewayUrl = `http://127.0.0.1:${port}`;
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('LADING_') && value !== undefined) env[key] = value;
    Object.assign(env, {
      NODE_OPTIONS: '',
      LADING_HTTP_ADDR: `127.0.0.1:${port}`,
      LADING_AUTH_ENABLED: 'true',
      LADING_UPSTREAMS_AUTH: auth.url,
      LADING_UPSTREAMS_BLOB: blob.url,
      LADING_UPSTREAMS_MANIFEST: manifest.url,
      LADING_LOG_LEVEL: 'warn',
      LADING_LOG_ACCESS: 'false',
    });
    gateway = spawn(process.execPath, ['--import', 'tsx', 'services/gateway/src/main.ts'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    gateway.stdout?.on('data', (d: Buffer) => (gatewayLog += d.toString('utf8')));
    gateway.stderr?.on('data', (d: Buffer) => (gatewayLog += d.toString('utf8')));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const up = await fetch(`${gatewayUrl}/healthz`).then((r) => r.status === 200, () => false);
      if (up) break;
      if (Date.now() > deadline || gateway.exitCode !== null) throw new Error(`the gateway did not start:\n${gatewayLog}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  afterAll(async () => {
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((resolve) => gateway.once('exit', resolve));
      gateway.kill('SIGTERM');
      await exited;
    }
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
    await deps?.close();
  });

  /** A request as a client makes it: without a token, then with the token the challenge asks for. */
  async function asPusher(method: string, url: string): Promise<Response> {
    const first = await fetch(`${gatewayUrl}${url}`, { method });
    expect(first.status).toBe(401);
    const challenge = parseChallenge(first.headers.get('www-authenticate') ?? undefined);
    expect(challenge).not.toBeNull();
    const query = new URLSearchParams({ service: challenge!.service });
    for (const scope of challenge!.scopes) query.append('scope', scope);
    expect(challenge!.realm).toBe(`${gatewayUrl}/token`);
    const tokenRes = await fetch(`${challenge!.realm}?${query}`, {
      headers: { authorization: `Basic ${Buffer.from('pusher:pusher-password').toString('base64')}` },
    });
    expect(tokenRes.status).toBe(200);
    const { token } = (await tokenRes.json()) as { token: string };
    return fetch(`${gatewayUrl}${url}`, { method, headers: { authorization: `Bearer ${token}` } });
  }

  it('turns a mount from a repository the token cannot read into a plain upload', async () => {
    const res = await asPusher('POST', `/v2/team/app/blobs/uploads/?mount=${secretBlob.digest}&from=secret/app`);
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toMatch(/^\/v2\/team\/app\/blobs\/uploads\/[0-9a-f-]{36}$/);
    expect(await meta.findRepositoryBlob(deps.db, 'team/app', secretBlob.digest)).toBeNull();
  });

  it('turns a mount without a source into a plain upload', async () => {
    const res = await asPusher('POST', `/v2/team/app/blobs/uploads/?mount=${secretBlob.digest}`);
    expect(res.status).toBe(202);
    expect(await meta.findRepositoryBlob(deps.db, 'team/app', secretBlob.digest)).toBeNull();
  });

  it('mounts from a repository the token can read', async () => {
    const res = await asPusher('POST', `/v2/team/app/blobs/uploads/?mount=${publicBlob.digest}&from=public/src`);
    expect(res.status).toBe(201);
    expect(await meta.findRepositoryBlob(deps.db, 'team/app', publicBlob.digest)).not.toBeNull();
  });
});
