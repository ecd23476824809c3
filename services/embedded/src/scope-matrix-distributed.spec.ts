/**
 * The mount columns of the scope matrix again, behind the distributed gateway: its real process (services/gateway
 * main.ts) proxying over HTTP to the auth, blob and manifest services, which run here on loopback over one PGlite.
 * A mount whose source the token does not grant must become a plain upload there too, where the request the
 * services see is the one the proxy forwards, not the one the gateway rewrote in memory.
 *
 * And the admin API through that gateway (issue 24): every route of the auth service's admin route table, sent by
 * each caller the admin policy (scope-matrix-policy.ts) refuses there, is refused; a namespace admin's own requests
 * get through.
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
import { ADMIN_ROUTE_ACCESS, AdminPrincipalSpec, expectedAdminOutcome } from '../test/scope-matrix-policy';

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
  let adminRoutes: string[] = [];
  const secretBlob: TestBlob = makeBlob('only in secret/app');
  const publicBlob: TestBlob = makeBlob('in public/src, readable by all');

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true } });
    const logger = deps.logger;
    const authService = createAuthService({ db: deps.db, config: deps.config, logger });
    adminRoutes = authService.adminRoutes.map((r) => r.replace(' /admin/v1/', ' /'));
    const auth = await listen(authService.app);
    const blob = await listen(createBlobService({ db: deps.db, store: deps.store, config: deps.config, logger, events: deps.events }));
    const manifest = await listen(createManifestService({ db: deps.db, config: deps.config, logger, events: deps.events }));
    servers.push(auth.server, blob.server, manifest.server);

    await meta.createUser(deps.db, 'pusher', await hashPassword('pusher-password'), false);
    await meta.upsertNamespace(deps.db, 'team', false);
    await meta.upsertNamespace(deps.db, 'secret', false);
    await meta.upsertNamespace(deps.db, 'public', true);
    await meta.addGrant(deps.db, 'team', 'user', 'pusher', 'push');
    // Namespace admins: tina of team, sam of secret.
    for (const name of ['tina', 'sam']) await meta.createUser(deps.db, name, await hashPassword(`${name}-password`), false);
    await meta.addGrant(deps.db, 'team', 'user', 'tina', 'admin');
    await meta.addGrant(deps.db, 'secret', 'user', 'sam', 'admin');
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

  describe('the admin API behind the distributed gateway', () => {
    const callers: Array<AdminPrincipalSpec & { password?: string }> = [
      { name: 'team-admin', kind: 'team-admin', auth: { kind: 'basic', user: 'tina', password: 'tina-password' } },
      { name: 'other-admin', kind: 'other-admin', auth: { kind: 'basic', user: 'sam', password: 'sam-password' } },
      { name: 'user', kind: 'user', auth: { kind: 'basic', user: 'pusher', password: 'pusher-password' } },
      { name: 'anonymous', kind: 'anonymous', auth: { kind: 'none' } },
    ];
    const headersOf = (caller: AdminPrincipalSpec): Record<string, string> =>
      caller.auth.kind === 'basic' ? { authorization: `Basic ${Buffer.from(`${caller.auth.user}:${caller.auth.password}`).toString('base64')}` } : {};

    /** A request to a route, about `team`: its path parameters filled in, the namespace in its query and body. */
    function requestFor(route: string): { method: string; url: string; body: string } {
      const [method, template] = route.split(' ');
      const path = template
        .replace(':name', 'team+bot')
        .replace(/:id|:deliveryId/g, '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b')
        .replace(':token', 't')
        .replace('*namespace', 'team');
      const body = { prefix: 'team', namespace: 'team', name: 'made', principal: 'user:pusher', role: 'pull', url: 'https://hooks.example.com/x', password: 'long-enough-password' };
      return { method, url: `/admin/v1${path}?prefix=team&repository=team/app`, body: JSON.stringify(body) };
    }

    it('refuses every admin route to every caller the policy refuses it to: no unexpected allow', async () => {
      expect(adminRoutes.filter((r) => !(r in ADMIN_ROUTE_ACCESS))).toEqual([]);
      const allows: string[] = [];
      let refused = 0;
      for (const caller of callers) {
        for (const route of adminRoutes) {
          if (expectedAdminOutcome(caller, ADMIN_ROUTE_ACCESS[route]) !== 'deny') continue;
          const { method, url, body } = requestFor(route);
          const res = await fetch(`${gatewayUrl}${url}`, { method, headers: { ...headersOf(caller), 'content-type': 'application/json' }, body: method === 'GET' ? undefined : body });
          const code = ((await res.json().catch(() => ({}))) as { errors?: Array<{ code: string }> }).errors?.[0]?.code;
          if ((res.status === 401 && code === 'UNAUTHORIZED') || (res.status === 403 && code === 'DENIED')) refused++;
          else allows.push(`${caller.name} × ${route}: ${res.status} ${code ?? ''}`);
        }
      }
      expect(allows).toEqual([]);
      expect(refused).toBeGreaterThan(adminRoutes.length * 3);
    });

    it("lets a namespace admin manage its namespace's grants and robots, and see only its namespaces", async () => {
      const tina = headersOf(callers[0]);
      const json = { ...tina, 'content-type': 'application/json' };
      const listed = await fetch(`${gatewayUrl}/admin/v1/namespaces`, { headers: tina });
      expect(listed.status).toBe(200);
      expect(((await listed.json()) as { namespaces: Array<{ prefix: string }> }).namespaces.map((n) => n.prefix)).toEqual(['team']);
      const granted = await fetch(`${gatewayUrl}/admin/v1/grants`, { method: 'POST', headers: json, body: JSON.stringify({ prefix: 'team', principal: 'user:sam', role: 'pull' }) });
      expect(granted.status).toBe(201);
      const robot = await fetch(`${gatewayUrl}/admin/v1/robots`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'ci', namespace: 'team' }) });
      expect(robot.status).toBe(201);
      expect(((await robot.json()) as { login: string }).login).toBe('robot$team+ci');
      const beyond = await fetch(`${gatewayUrl}/admin/v1/grants`, { method: 'POST', headers: json, body: JSON.stringify({ prefix: 'secret', principal: 'user:tina', role: 'pull' }) });
      expect(beyond.status).toBe(403);
    });
  });
});
