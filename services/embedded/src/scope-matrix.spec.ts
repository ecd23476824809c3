/**
 * The scope matrix: every principal (real accounts, refused accounts, and forged or altered tokens) against every
 * /v2 route and method, on a private and a public repository, through the real token endpoint and the real gateway
 * of one embedded registry. Each cell is compared with the policy table in scope-matrix-policy.ts; the matrix is
 * printed, and every unexpected allow, unexpected deny or unexpected answer is reported.
 *
 * The admin API has its half (issue 24): every route of its route table (a route without a case fails the spec)
 * for global admins, namespace admins of `team` and of another namespace, a plain user, a robot and anonymous, with
 * Basic credentials and console sessions, compared with ADMIN_ROUTE_ACCESS.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request, { Response } from 'supertest';
import type { SigningKey } from '@lading/access';
import { parseConfig } from '@lading/config';
import { createLogger } from '@lading/telemetry';
import { TestBlob, TestManifest, binaryParser, imageManifest, makeBlob } from '@lading/testing';
import { EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';
import { Challenge, TokenClient, parseChallenge } from '../test/scope-matrix-client';
import {
  ADMIN_PRINCIPALS,
  ADMIN_ROUTE_ACCESS,
  AdminOutcome,
  AdminPrincipalSpec,
  COLUMNS,
  Column,
  Outcome,
  PRINCIPALS,
  PrincipalSpec,
  Repo,
  expectedAdminOutcome,
  expectedOutcome,
} from '../test/scope-matrix-policy';

const ROOT = { user: 'root', password: 'root-password-0' };
const REPOS: Repo[] = ['team/app', 'public/app'];
/** About 10 s of seeding and 10 s of matrix on an idle machine; a loaded CI machine gets room instead of a timeout. */
const SLOW_MACHINE_TIMEOUT_MS = 180_000;
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A request as the matrix sends it. */
interface Probe {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  body?: Buffer;
  contentType?: string;
}

/**
 * An admin request of the matrix: what to send, the statuses its handler answers when the caller is let through
 * (some are a 404 or 409 of the handler: past the guard all the same), and, for a listing, whether the answer shows
 * anything of `team`.
 */
interface AdminProbe {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: object;
  ok: number[];
  showsTeam?: (body: Record<string, unknown[]>) => boolean;
}

/** What a cell came to: an outcome, or null for an answer that is neither an allow nor a proper deny. */
interface Observed {
  outcome: Outcome | null;
  mark: string;
  detail: string;
}

/** Per principal and repository: the content its mutating requests act on, and its own upload sessions. */
interface RowFixture {
  deleteManifest: TestManifest;
  deleteTag: string;
  deleteBlob: TestBlob;
  pushManifest: TestManifest;
  pushTag: string;
  chunk: TestBlob;
  ownSession?: string;
  ownSessionToDelete?: string;
}

describe('scope matrix', () => {
  let dir: string;
  let registry: EmbeddedRegistry;
  let server: Server;
  /** The registry's base URL. */
  let app: string;
  let client: TokenClient;
  let rootPat: string;
  const secrets = new Map<string, string>();
  const shared = new Map<Repo, { config: TestBlob; layer: TestBlob; manifest: TestManifest; othersSession: string }>();
  const secretBlobs: TestBlob[] = [];
  const publicSource = makeBlob('a blob in public/src, readable by everyone');
  const fixtures = new Map<string, RowFixture>();

  function admin(method: 'get' | 'post' | 'put' | 'patch' | 'delete', url: string, body?: object) {
    const req = request(app)[method](`/admin/v1${url}`).set('Authorization', basic(ROOT.user, rootPat));
    return body ? req.send(body) : req;
  }

  async function seedToken(user: string, password: string, scopes: string[]): Promise<string> {
    const q = new URLSearchParams({ service: 'lading' });
    for (const s of scopes) q.append('scope', s);
    const res = await request(app).get(`/token?${q}`).set('Authorization', basic(user, password));
    expect(res.status).toBe(200);
    return res.body.token;
  }

  async function pushBlob(token: string, repo: string, blob: TestBlob) {
    await request(app)
      .post(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`)
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'application/octet-stream')
      .send(blob.data)
      .expect(201);
  }

  async function putManifest(token: string, repo: string, reference: string, manifest: TestManifest) {
    await request(app)
      .put(`/v2/${repo}/manifests/${reference}`)
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', manifest.mediaType)
      .send(manifest.body.toString())
      .then((res) => {
        if (res.status !== 201) throw new Error(`PUT ${repo}:${reference} answered ${res.status} ${JSON.stringify(res.body)}`);
      });
  }

  async function registryKey(): Promise<SigningKey> {
    const r = await registry.db.query<{ kid: string; pem: string; jwk: unknown }>(
      `SELECT kid, private_key_pem AS pem, public_jwk AS jwk FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1`,
    );
    const row = r.rows[0];
    return { kid: row.kid, privateKeyPem: row.pem, publicJwk: (typeof row.jwk === 'string' ? JSON.parse(row.jwk) : row.jwk) as SigningKey['publicJwk'] };
  }

  /** Per admin row: what its mutating requests act on (so that each allowed one finds its own target). */
  const adminFixtures = { webhook: '', delivery: '', rowWebhooks: [] as string[] };
  const HOOK = 'http://127.0.0.1:9/hook';

  async function seedAdminMatrix() {
    for (const [i] of ADMIN_PRINCIPALS.entries()) {
      await admin('post', '/users', { name: `victim${i}`, password: 'victim-password' }).expect(201);
      await admin('post', '/users', { name: `holder${i}`, password: 'holder-password' }).expect(201);
      await admin('post', `/users/holder${i}/tokens`, { name: `t${i}` }).expect(201);
      await admin('post', '/robots', { name: `bot${i}`, namespace: 'team' }).expect(201);
      await admin('post', '/grants', { prefix: 'team', principal: `user:gone${i}`, role: 'pull' }).expect(201);
      await admin('post', '/namespaces', { prefix: `team/ns${i}` }).expect(201);
      adminFixtures.rowWebhooks.push((await admin('post', '/webhooks', { name: `row ${i}`, namespace: 'team', url: HOOK }).expect(201)).body.id);
    }
    adminFixtures.webhook = (await admin('post', '/webhooks', { name: 'team', namespace: 'team', url: HOOK }).expect(201)).body.id;
    adminFixtures.delivery = (await admin('post', `/webhooks/${adminFixtures.webhook}/ping`).expect(202)).body.deliveryId;
    // Something of another namespace in every listing, which a `team` admin must not see either.
    await admin('post', '/robots', { name: 'spy', namespace: 'secret' }).expect(201);
    await admin('post', '/webhooks', { name: 'secret', namespace: 'secret', url: HOOK }).expect(201);
  }

  /** The request of one admin route for row `i`: always about `team` (or about nothing in particular). */
  function adminProbe(route: string, i: number): AdminProbe {
    const hook = `/webhooks/${adminFixtures.webhook}`;
    const some = (key: string, test: (item: Record<string, unknown>) => boolean) => (body: Record<string, unknown[]>) =>
      (body[key] as Array<Record<string, unknown>>).some(test);
    const probes: Record<string, () => AdminProbe> = {
      'GET /users': () => ({ method: 'GET', path: '/users', ok: [200] }),
      'POST /users': () => ({ method: 'POST', path: '/users', body: { name: `made${i}`, password: 'made-password' }, ok: [201] }),
      'PUT /users/:name/password': () => ({ method: 'PUT', path: `/users/victim${i}/password`, body: { password: 'changed-password' }, ok: [204] }),
      'POST /users/:name/disable': () => ({ method: 'POST', path: `/users/victim${i}/disable`, ok: [204] }),
      'POST /users/:name/enable': () => ({ method: 'POST', path: `/users/victim${i}/enable`, ok: [204] }),
      'DELETE /users/:name': () => ({ method: 'DELETE', path: `/users/victim${i}`, ok: [204] }),
      'GET /users/:name/tokens': () => ({ method: 'GET', path: `/users/holder${i}/tokens`, ok: [200] }),
      'POST /users/:name/tokens': () => ({ method: 'POST', path: `/users/holder${i}/tokens`, body: { name: `new${i}` }, ok: [201] }),
      'DELETE /users/:name/tokens/:token': () => ({ method: 'DELETE', path: `/users/holder${i}/tokens/t${i}`, ok: [204] }),
      'GET /robots': () => ({ method: 'GET', path: '/robots', ok: [200], showsTeam: some('robots', (r) => String(r.name).startsWith('team+')) }),
      'POST /robots': () => ({ method: 'POST', path: '/robots', body: { name: `made${i}`, namespace: 'team' }, ok: [201] }),
      'DELETE /robots/:name': () => ({ method: 'DELETE', path: `/robots/team+bot${i}`, ok: [204] }),
      'GET /namespaces': () => ({ method: 'GET', path: '/namespaces', ok: [200], showsTeam: some('namespaces', (n) => n.prefix === 'team') }),
      'POST /namespaces': () => ({ method: 'POST', path: '/namespaces', body: { prefix: `made${i}` }, ok: [201] }),
      'PATCH /namespaces': () => ({ method: 'PATCH', path: '/namespaces?prefix=team', body: { immutableTags: [`keep-${i}-*`] }, ok: [200] }),
      'DELETE /namespaces': () => ({ method: 'DELETE', path: `/namespaces?prefix=team/ns${i}`, ok: [204] }),
      'POST /grants': () => ({ method: 'POST', path: '/grants', body: { prefix: 'team', principal: `user:grantee${i}`, role: 'pull' }, ok: [201] }),
      'DELETE /grants': () => ({ method: 'DELETE', path: '/grants', body: { prefix: 'team', principal: `user:gone${i}`, role: 'pull' }, ok: [204] }),
      'GET /webhooks/': () => ({ method: 'GET', path: '/webhooks', ok: [200], showsTeam: some('webhooks', (w) => w.namespace === 'team') }),
      'POST /webhooks/': () => ({ method: 'POST', path: '/webhooks', body: { name: `made ${i}`, namespace: 'team', url: HOOK }, ok: [201] }),
      'GET /webhooks/:id': () => ({ method: 'GET', path: hook, ok: [200] }),
      'PATCH /webhooks/:id': () => ({ method: 'PATCH', path: hook, body: { name: `renamed ${i}` }, ok: [200] }),
      'DELETE /webhooks/:id': () => ({ method: 'DELETE', path: `/webhooks/${adminFixtures.rowWebhooks[i]}`, ok: [204] }),
      'POST /webhooks/:id/rotate': () => ({ method: 'POST', path: `${hook}/rotate`, ok: [200] }),
      'GET /webhooks/:id/deliveries': () => ({ method: 'GET', path: `${hook}/deliveries`, ok: [200] }),
      'GET /webhooks/:id/deliveries/:deliveryId': () => ({ method: 'GET', path: `${hook}/deliveries/${adminFixtures.delivery}`, ok: [200] }),
      // The ping's delivery is still pending (no delivery worker here): the handler's 409.
      'POST /webhooks/:id/deliveries/:deliveryId/redeliver': () => ({ method: 'POST', path: `${hook}/deliveries/${adminFixtures.delivery}/redeliver`, ok: [202, 409] }),
      'POST /webhooks/:id/ping': () => ({ method: 'POST', path: `${hook}/ping`, ok: [202] }),
      'GET /outbox/parked': () => ({ method: 'GET', path: '/outbox/parked', ok: [200] }),
      // Nothing is parked: the handler's 404.
      'POST /outbox/parked/:id/requeue': () => ({ method: 'POST', path: '/outbox/parked/00000000-0000-7000-8000-000000000000/requeue', ok: [404] }),
      'GET /quotas/': () => ({ method: 'GET', path: '/quotas', ok: [200] }),
      'PUT /quotas/*namespace': () => ({ method: 'PUT', path: '/quotas/team', body: { quotaBytes: 1_000_000_000 }, ok: [200] }),
      'DELETE /quotas/*namespace': () => ({ method: 'DELETE', path: '/quotas/team', ok: [204] }),
      'GET /usage/': () => ({ method: 'GET', path: '/usage', ok: [200] }),
      'GET /usage/*namespace': () => ({ method: 'GET', path: '/usage/team', ok: [200] }),
      'GET /audit/': () => ({ method: 'GET', path: '/audit?namespace=team', ok: [200] }),
      'GET /proxies/': () => ({ method: 'GET', path: '/proxies', ok: [200] }),
      'PUT /proxies/*namespace': () => ({ method: 'PUT', path: `/proxies/mirror${i}`, body: { upstream: 'https://ghcr.io' }, ok: [201] }),
      'DELETE /proxies/*namespace': () => ({ method: 'DELETE', path: `/proxies/mirror${i}`, ok: [204] }),
      'GET /gc/dry-run': () => ({ method: 'GET', path: '/gc/dry-run', ok: [200] }),
      'GET /gc/status': () => ({ method: 'GET', path: '/gc/status', ok: [200] }),
      'POST /gc/collect': () => ({ method: 'POST', path: '/gc/collect', ok: [200] }),
      'GET /backup/': () => ({ method: 'GET', path: '/backup', ok: [200] }),
      // No such repository: the handler's 404.
      'DELETE /repositories/^\\/(.+)$/': () => ({ method: 'DELETE', path: `/repositories/team/none${i}`, ok: [404] }),
      'POST /keys/rotate': () => ({ method: 'POST', path: '/keys/rotate', ok: [201] }),
    };
    const probe = probes[route];
    if (!probe) throw new Error(`the admin matrix has no request for ${route}: add one, and its expectation to ADMIN_ROUTE_ACCESS`);
    return probe();
  }

  /** How a row of the admin matrix authenticates: Basic credentials, or a console session (cookie and CSRF token). */
  async function adminAuth(principal: AdminPrincipalSpec): Promise<Record<string, string>> {
    const auth = principal.auth;
    if (auth.kind === 'none') return {};
    if (auth.kind === 'basic') return { Authorization: basic(auth.user, auth.password ?? secrets.get(auth.secret!)!) };
    const res = await request(app).post('/ui/api/session').send({ username: auth.user, password: auth.password }).expect(200);
    return { Cookie: (res.headers['set-cookie'] as unknown as string[])[0].split(';')[0], 'X-CSRF-Token': res.body.csrf };
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-matrix-'));
    const config = parseConfig({
      data: { dir },
      // The refused rows fail a login per scope they ask for: keep the limiter out of the matrix (it has its own tests).
      auth: { enabled: true, loginFailureLimit: 100_000, loginAddressLimit: 100_000, loginAccountLimit: 100_000 },
      admin: ROOT,
      log: { level: 'silent', access: false },
      // The admin matrix's webhooks point at a closed port of this host.
      webhooks: { allowList: ['127.0.0.1'] },
    });
    registry = await createEmbeddedRegistry(config, createLogger({ service: 'test', level: 'silent' }));
    // One listening server for the whole matrix (supertest would otherwise start one per request).
    server = registry.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    app = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    // Principals, through the admin API. The first admin comes from the configuration (LADING_ADMIN_USER).
    const pat = await request(app).post(`/admin/v1/users/${ROOT.user}/tokens`).set('Authorization', basic(ROOT.user, ROOT.password)).send({ name: 'seed' });
    expect(pat.status).toBe(201);
    rootPat = pat.body.token;
    for (const [name, isAdmin] of [['reader', false], ['pusher', false], ['deleter', false], ['boss', true], ['dora', false], ['olga', false], ['tina', false], ['sam', false]] as const) {
      await admin('post', '/users', { name, password: `${name}-password`, admin: isAdmin }).expect(201);
    }
    await admin('post', '/namespaces', { prefix: 'team' }).expect(201);
    await admin('post', '/namespaces', { prefix: 'public', public: true }).expect(201);
    await admin('post', '/namespaces', { prefix: 'secret' }).expect(201);
    for (const robot of ['ci', 'gone', 'old']) {
      const created = await admin('post', '/robots', { name: robot, expiresIn: '1h' }).expect(201);
      secrets.set(`robot$${robot}`, created.body.secret);
    }
    secrets.set('pusher-pat', (await admin('post', '/users/pusher/tokens', { name: 'ci' }).expect(201)).body.token);
    const grants: Array<[string, string, string]> = [
      ['team', 'user:reader', 'pull'],
      ['team', 'user:pusher', 'push'],
      ['public', 'user:pusher', 'push'],
      ['team', 'user:deleter', 'delete'],
      ['team', 'user:dora', 'pull'],
      ['team', 'user:olga', 'push'],
      ['public', 'user:olga', 'push'],
      ['team', 'robot:ci', 'push'],
      ['team', 'robot:gone', 'push'],
      ['team', 'robot:old', 'push'],
      // Namespace admins: tina of team, sam of secret.
      ['team', 'user:tina', 'admin'],
      ['secret', 'user:sam', 'admin'],
    ];
    for (const [prefix, principal, role] of grants) await admin('post', '/grants', { prefix, principal, role }).expect(201);

    // The refused rows worked before they were revoked, expired or disabled.
    for (const [user, password] of [['robot$gone', secrets.get('robot$gone')], ['robot$old', secrets.get('robot$old')], ['dora', 'dora-password']] as Array<[string, string]>) {
      expect((await seedToken(user, password, ['repository:team/app:pull'])).length).toBeGreaterThan(0);
    }
    await admin('delete', '/robots/gone').expect(204);
    await registry.db.query(`UPDATE robots SET expires_at = now() - interval '1 second' WHERE name = 'old'`);
    await admin('post', '/users/dora/disable').expect(204);

    // Content, pushed with root's token.
    const all = ['team/app', 'public/app', 'secret/app', 'public/src'].map((r) => `repository:${r}:pull,push,delete`);
    const rootToken = await seedToken(ROOT.user, ROOT.password, all);
    const olgaToken = await seedToken('olga', 'olga-password', REPOS.map((r) => `repository:${r}:pull,push`));
    await pushBlob(rootToken, 'public/src', publicSource);
    for (const repo of REPOS) {
      const config = makeBlob(`{"architecture":"amd64","os":"linux","repo":"${repo}"}`);
      const layer = makeBlob(2048);
      const manifest = imageManifest(config, [layer]);
      await pushBlob(rootToken, repo, config);
      await pushBlob(rootToken, repo, layer);
      await putManifest(rootToken, repo, 'v1', manifest);
      // Another principal's (olga's) upload session, which nobody else may use.
      const session = await request(app).post(`/v2/${repo}/blobs/uploads/`).set('Authorization', `Bearer ${olgaToken}`).expect(202);
      shared.set(repo, { config, layer, manifest, othersSession: session.headers.location });
    }
    for (const [i, principal] of PRINCIPALS.entries()) {
      const secret = makeBlob(`secret blob ${i}`);
      await pushBlob(rootToken, 'secret/app', secret);
      secretBlobs.push(secret);
      for (const repo of REPOS) {
        const { config } = shared.get(repo)!;
        const deleteManifest = imageManifest(config, [], { annotations: { row: principal.name, purpose: 'delete' } });
        const deleteBlob = makeBlob(`${repo} blob to delete ${i}`);
        await putManifest(rootToken, repo, `del-${i}`, deleteManifest);
        await pushBlob(rootToken, repo, deleteBlob);
        fixtures.set(`${i}|${repo}`, {
          deleteManifest,
          deleteTag: `del-${i}`,
          deleteBlob,
          pushManifest: imageManifest(config, [], { annotations: { row: principal.name, purpose: 'push' } }),
          pushTag: `push-${i}`,
          chunk: makeBlob(`chunk of ${principal.name} in ${repo}`),
        });
      }
    }
    await seedAdminMatrix();
    client = new TokenClient({ target: app, secrets, registryKey, admin: { user: 'boss', password: 'boss-password' } });
  }, SLOW_MACHINE_TIMEOUT_MS);

  afterAll(async () => {
    if (server) await new Promise((resolve) => server.close(resolve));
    await registry?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The concrete request of a column for one row. */
  function probeFor(column: Column, row: number): Probe {
    if (column.kind === 'base') return { method: 'GET', path: '/v2/' };
    if (column.kind === 'base-head') return { method: 'HEAD', path: '/v2/' };
    if (column.kind === 'catalog') return { method: 'GET', path: '/v2/_catalog' };
    if (column.kind === 'catalog-head') return { method: 'HEAD', path: '/v2/_catalog' };
    const repo = column.repo as Repo;
    const base = `/v2/${repo}`;
    const { layer, manifest, othersSession } = shared.get(repo)!;
    const f = fixtures.get(`${row}|${repo}`)!;
    const own = f.ownSession ?? othersSession;
    const json = { contentType: 'application/vnd.oci.image.manifest.v1+json' };
    const octets = { contentType: 'application/octet-stream' };
    switch (column.kind) {
      case 'tags':
        return { method: 'GET', path: `${base}/tags/list` };
      case 'tags-head':
        return { method: 'HEAD', path: `${base}/tags/list` };
      case 'manifest-get-tag':
        return { method: 'GET', path: `${base}/manifests/v1` };
      case 'manifest-head-tag':
        return { method: 'HEAD', path: `${base}/manifests/v1` };
      case 'manifest-get-digest':
        return { method: 'GET', path: `${base}/manifests/${manifest.digest}` };
      case 'manifest-head-digest':
        return { method: 'HEAD', path: `${base}/manifests/${manifest.digest}` };
      case 'manifest-put-tag':
        return { method: 'PUT', path: `${base}/manifests/${f.pushTag}`, body: f.pushManifest.body, ...json };
      case 'manifest-put-digest':
        return { method: 'PUT', path: `${base}/manifests/${f.pushManifest.digest}`, body: f.pushManifest.body, ...json };
      case 'manifest-delete-tag':
        return { method: 'DELETE', path: `${base}/manifests/${f.deleteTag}` };
      case 'manifest-delete-digest':
        return { method: 'DELETE', path: `${base}/manifests/${f.deleteManifest.digest}` };
      case 'blob-get':
        return { method: 'GET', path: `${base}/blobs/${layer.digest}` };
      case 'blob-head':
        return { method: 'HEAD', path: `${base}/blobs/${layer.digest}` };
      case 'blob-delete':
        return { method: 'DELETE', path: `${base}/blobs/${f.deleteBlob.digest}` };
      case 'upload-start':
        return { method: 'POST', path: `${base}/blobs/uploads/` };
      case 'own-upload-get':
        return { method: 'GET', path: own };
      case 'own-upload-head':
        return { method: 'HEAD', path: own };
      case 'own-upload-patch':
        return { method: 'PATCH', path: own, body: f.chunk.data, ...octets };
      case 'own-upload-put':
        return { method: 'PUT', path: `${own}?digest=${f.chunk.digest}` };
      case 'own-upload-delete':
        return { method: 'DELETE', path: f.ownSessionToDelete ?? othersSession };
      case 'other-upload-get':
        return { method: 'GET', path: othersSession };
      case 'other-upload-head':
        return { method: 'HEAD', path: othersSession };
      case 'other-upload-patch':
        return { method: 'PATCH', path: othersSession, body: Buffer.from('not yours'), ...octets };
      case 'other-upload-put':
        return { method: 'PUT', path: `${othersSession}?digest=${makeBlob('not yours').digest}`, body: Buffer.from('not yours'), ...octets };
      case 'other-upload-delete':
        return { method: 'DELETE', path: othersSession };
      case 'mount-from-unreadable':
        return { method: 'POST', path: `${base}/blobs/uploads/?mount=${secretBlobs[row].digest}&from=secret/app` };
      case 'mount-from-readable':
        return { method: 'POST', path: `${base}/blobs/uploads/?mount=${publicSource.digest}&from=public/src` };
      case 'mount-without-from':
        return { method: 'POST', path: `${base}/blobs/uploads/?mount=${secretBlobs[row].digest}` };
      case 'referrers':
        return { method: 'GET', path: `${base}/referrers/${manifest.digest}` };
      case 'referrers-head':
        return { method: 'HEAD', path: `${base}/referrers/${manifest.digest}` };
    }
  }

  async function send(probe: Probe, token: string | null): Promise<Response> {
    const method = probe.method.toLowerCase() as 'get' | 'head' | 'put' | 'post' | 'patch' | 'delete';
    let req = request(app)[method](probe.path);
    if (token) req = req.set('Authorization', `Bearer ${token}`);
    if (probe.method === 'GET') req = req.buffer(true).parse(binaryParser);
    // JSON-typed bodies go as text (superagent would serialise a Buffer as JSON).
    if (probe.body) req = req.set('Content-Type', probe.contentType ?? 'application/octet-stream').send(probe.contentType?.endsWith('json') ? probe.body.toString() : probe.body);
    return req;
  }

  function errorCode(res: Response): string | undefined {
    const body = Buffer.isBuffer(res.body) ? res.body.toString('utf8') : JSON.stringify(res.body ?? '');
    try {
      return (JSON.parse(body) as { errors?: Array<{ code: string }> }).errors?.[0]?.code;
    } catch {
      return undefined;
    }
  }

  function classify(column: Column, probe: Probe, res: Response): Observed {
    const code = errorCode(res);
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers['www-authenticate']);
      if (challenge && (probe.method === 'HEAD' || code === 'UNAUTHORIZED')) return { outcome: 'deny', mark: '·', detail: `401 ${challenge.error ?? ''}` };
      return { outcome: null, mark: '?', detail: `401 without a Bearer challenge or the UNAUTHORIZED code (${code})` };
    }
    // (A HEAD answer has no body to carry the code.)
    if (column.need.kind === 'never' && res.status === 404 && (code === 'BLOB_UPLOAD_UNKNOWN' || probe.method === 'HEAD')) {
      return { outcome: 'deny', mark: 'n', detail: '404 BLOB_UPLOAD_UNKNOWN' };
    }
    if (column.need.kind === 'mount') {
      if (res.status === 201) return { outcome: 'mounted', mark: 'M', detail: '201 mounted' };
      if (res.status === 202 && /\/blobs\/uploads\/[0-9a-f-]{36}$/.test(res.headers.location ?? '')) return { outcome: 'upload', mark: 'U', detail: '202 upload session' };
    } else if (res.status === column.okStatus) {
      return { outcome: 'allow', mark: 'A', detail: String(res.status) };
    }
    return { outcome: null, mark: '?', detail: `${res.status} ${code ?? ''}`.trim() };
  }

  it('allows and denies exactly what the policy says, for every principal, route and method', async () => {
    const challenges = new Map<string, Challenge>();
    const columnKey = (c: Column) => `${c.repo ?? ''} ${c.kind}`;
    const cells: Array<{ principal: PrincipalSpec; column: Column; expected: Outcome; observed: Observed }> = [];
    const started = Date.now();

    for (const [row, principal] of PRINCIPALS.entries()) {
      for (const column of COLUMNS) {
        const probe = probeFor(column, row);
        let challenge = challenges.get(columnKey(column));
        if (!challenge) {
          // As a client does: the request without a token, answered by a challenge naming what to ask for.
          const first = await send(probe, null);
          const parsed = parseChallenge(first.headers['www-authenticate']);
          if (first.status !== 401 || !parsed) throw new Error(`${column.repo ?? ''} ${column.label} without a token answered ${first.status} without a challenge`);
          challenge = parsed;
          challenges.set(columnKey(column), challenge);
        }
        const token = await client.tokenFor(principal, challenge);
        const res = await send(probe, token);
        const observed = classify(column, probe, res);
        cells.push({ principal, column, expected: expectedOutcome(principal, column), observed });

        // A session the principal opened is its own for the session columns (a second one is for the DELETE).
        if (column.kind === 'upload-start' && res.status === 202) {
          const f = fixtures.get(`${row}|${column.repo}`)!;
          f.ownSession = res.headers.location;
          const second = await send(probe, token);
          f.ownSessionToDelete = second.status === 202 ? second.headers.location : undefined;
        }
      }
    }

    const unexpectedAllows = cells.filter(
      (c) => c.observed.outcome !== null && ((c.expected === 'deny' && c.observed.outcome !== 'deny') || (c.expected === 'upload' && c.observed.outcome === 'mounted')),
    );
    const unexpectedDenies = cells.filter(
      (c) => c.observed.outcome !== null && ((c.expected !== 'deny' && c.observed.outcome === 'deny') || (c.expected === 'mounted' && c.observed.outcome === 'upload')),
    );
    const unexpectedAnswers = cells.filter((c) => c.observed.outcome === null);

    // The matrix: a line per request, a column per principal.
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    const title = (c: Column) => `${(c.repo ?? '').padEnd(11)}${c.label}`;
    const width = Math.max(...COLUMNS.map((c) => title(c).length)) + 2;
    const markOf = (o: Outcome) => ({ allow: 'A', deny: '·', mounted: 'M', upload: 'U' })[o];
    const lines = [
      `Scope matrix: ${PRINCIPALS.length} principals × ${COLUMNS.length} requests = ${cells.length} cells in ${Date.now() - started} ms ` +
        `(token requests: ${client.requests.basic} with Basic credentials, ${client.requests.refresh} with a refresh token, ${client.requests.anonymous} anonymous): ${unexpectedAllows.length} unexpected allows, ${unexpectedDenies.length} unexpected denies, ` +
        `${unexpectedAnswers.length} unexpected answers`,
      `  A allowed  · denied (401 UNAUTHORIZED + Bearer challenge)  n denied (404 BLOB_UPLOAD_UNKNOWN)  M mounted (201)  ` +
        `U plain upload instead of a mount (202)  ! mismatch (the mark is what was observed; see the list below)`,
      `  principals: ${PRINCIPALS.map((p, i) => `${letters[i]}=${p.name}`).join(' ')}`,
      `${'request'.padEnd(width)}${PRINCIPALS.map((_, i) => ` ${letters[i]}`).join('')}`,
    ];
    for (const column of COLUMNS) {
      const row = cells.filter((c) => c.column === column);
      const marks = row.map((c) => {
        const ok = c.observed.outcome === c.expected;
        return ok ? ` ${c.observed.mark}` : `!${c.observed.mark}`;
      });
      lines.push(`${title(column).padEnd(width)}${marks.join('')}`);
    }
    const mismatches = [...unexpectedAllows, ...unexpectedDenies, ...unexpectedAnswers].map(
      (c) => `${c.principal.name} × ${[c.column.repo, c.column.label.replace(/ +/, ' ')].filter(Boolean).join(' ')}: expected ${c.expected} (${markOf(c.expected)}), observed ${c.observed.detail}`,
    );
    if (mismatches.length > 0) lines.push('', 'Mismatches:', ...mismatches.map((m) => `  ${m}`));
    process.stdout.write(`\n${lines.join('\n')}\n\n`);

    expect(PRINCIPALS.length).toBeGreaterThanOrEqual(14);
    expect(mismatches).toEqual([]);
  }, SLOW_MACHINE_TIMEOUT_MS);

  it('allows and denies exactly what the admin policy says, for every admin route and every kind of caller', async () => {
    const routes = registry.adminRoutes.map((r) => r.replace(' /admin/v1/', ' /'));
    // Every route of the table has its expectation, and every expectation its route (a renamed route fails here).
    expect(routes.filter((r) => !(r in ADMIN_ROUTE_ACCESS))).toEqual([]);
    expect(Object.keys(ADMIN_ROUTE_ACCESS).filter((r) => !routes.includes(r))).toEqual([]);

    const cells: Array<{ principal: AdminPrincipalSpec; route: string; expected: AdminOutcome; observed: AdminOutcome | null; detail: string }> = [];
    for (const [i, principal] of ADMIN_PRINCIPALS.entries()) {
      const headers = await adminAuth(principal);
      for (const route of routes) {
        const probe = adminProbe(route, i);
        let req = request(app)[probe.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete'](`/admin/v1${probe.path}`);
        for (const [name, value] of Object.entries(headers)) req = req.set(name, value);
        const res = await (probe.body ? req.send(probe.body) : req);
        const code = (res.body as { errors?: Array<{ code: string }> } | undefined)?.errors?.[0]?.code;
        let observed: AdminOutcome | null = null;
        if ((res.status === 401 && code === 'UNAUTHORIZED') || (res.status === 403 && code === 'DENIED')) observed = 'deny';
        else if (probe.ok.includes(res.status)) observed = probe.showsTeam && !probe.showsTeam(res.body) ? 'filtered' : 'allow';
        cells.push({ principal, route, expected: expectedAdminOutcome(principal, ADMIN_ROUTE_ACCESS[route]), observed, detail: `${res.status} ${code ?? ''}`.trim() });
      }
    }

    const letters = 'abcdefghijklmnopqrstuvwxyz';
    const width = Math.max(...routes.map((r) => r.length)) + 2;
    const mark = (o: AdminOutcome | null) => (o === null ? '?' : { allow: 'A', filtered: 'f', deny: '·' }[o]);
    const lines = [
      `Admin scope matrix: ${ADMIN_PRINCIPALS.length} callers × ${routes.length} routes = ${cells.length} cells`,
      '  A allowed  f allowed, showing nothing of team  · denied (401 UNAUTHORIZED, 403 DENIED)  ? another answer  ! mismatch',
      `  callers: ${ADMIN_PRINCIPALS.map((p, i) => `${letters[i]}=${p.name}`).join(' ')}`,
      `${'route'.padEnd(width)}${ADMIN_PRINCIPALS.map((_, i) => ` ${letters[i]}`).join('')}`,
    ];
    for (const route of routes) {
      lines.push(`${route.padEnd(width)}${cells.filter((c) => c.route === route).map((c) => `${c.observed === c.expected ? ' ' : '!'}${mark(c.observed)}`).join('')}`);
    }
    const allows = cells.filter((c) => c.observed !== null && c.observed !== 'deny' && (c.expected === 'deny' || (c.expected === 'filtered' && c.observed === 'allow')));
    const mismatches = cells.filter((c) => c.observed !== c.expected).map((c) => `${c.principal.name} × ${c.route}: expected ${c.expected}, observed ${c.detail}`);
    lines.push(`unexpected allows: ${allows.length}, mismatches: ${mismatches.length}`);
    if (mismatches.length > 0) lines.push('', 'Mismatches:', ...mismatches.map((m) => `  ${m}`));
    process.stdout.write(`\n${lines.join('\n')}\n\n`);

    expect(ADMIN_PRINCIPALS.map((p) => p.kind)).toEqual(expect.arrayContaining(['global-admin', 'team-admin', 'other-admin', 'user', 'robot', 'anonymous']));
    expect(allows).toEqual([]);
    expect(mismatches).toEqual([]);
  }, SLOW_MACHINE_TIMEOUT_MS);

  it('rotates the signing key with no failed request, even right after a token that names an unknown key', async () => {
    const manifest = '/v2/team/app/manifests/v1';
    const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8')) as { kid: string }).kid;
    const readerToken = async () => {
      const res = await request(app).get('/token?service=lading&scope=repository:team/app:pull').set('Authorization', basic('reader', 'reader-password'));
      expect(res.status).toBe(200);
      return res.body.token as string;
    };
    const before = await readerToken();
    expect((await request(app).get(manifest).set('Authorization', `Bearer ${before}`)).status).toBe(200);

    // A token signed by a key nobody published makes the gateway look for new keys; the rotation comes right after.
    const challenge: Challenge = { realm: `${app}/token`, service: 'lading', scopes: ['repository:team/app:pull'] };
    const forged = await client.forge('unknown-kid', challenge);
    expect((await request(app).get(manifest).set('Authorization', `Bearer ${forged}`)).status).toBe(401);
    const rotated = await admin('post', '/keys/rotate').expect(201);

    const after = await readerToken();
    expect(kidOf(after)).toBe(rotated.body.kid);
    expect(kidOf(after)).not.toBe(kidOf(before));
    expect((await request(app).get(manifest).set('Authorization', `Bearer ${after}`)).status).toBe(200);
    expect((await request(app).get(manifest).set('Authorization', `Bearer ${before}`)).status).toBe(200);
  });
});
