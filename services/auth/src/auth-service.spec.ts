import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import request from 'supertest';
import type { Express } from 'express';
import { PasswordPool, TokenClaims, hashPassword, keysFromJwks, verifyPassword, verifyToken } from '@lading/access';
import { parseConfig } from '@lading/config';
import * as meta from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { TestDeps, createTestDeps } from '@lading/testing';
import { AuthService, bootstrapAdmin, createAuthService, loginLimits, passwordPoolFromConfig } from './auth-service';
import { secretDigest } from './principals';

const ROOT = { user: 'root', password: 'root-password-1' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const decodePart = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;

/** A /token query string; `scope` may repeat, as Docker sends it. */
function tokenQuery(params: Record<string, string | string[]>): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) for (const v of Array.isArray(value) ? value : [value]) q.append(key, v);
  return `/token?${q}`;
}

/** Verifies a token the way a gateway does: offline, against the JWKS the service publishes now. */
async function verified(app: Express, token: string): Promise<TokenClaims> {
  const jwks = await request(app).get('/.well-known/jwks.json').expect(200);
  return verifyToken(token, keysFromJwks(jwks.body), { issuer: 'lading-auth', audience: 'lading', leewaySeconds: 60, now: Date.now });
}

describe('auth service', () => {
  let deps: TestDeps;
  let app: Express;
  let service: AuthService;
  let adminPat: string;
  let robotSecret: string;

  /** Calls the admin API as root (with root's personal access token: no argon2 per call). */
  function admin(method: 'get' | 'post' | 'put' | 'delete', path: string, body?: unknown) {
    const req = request(app)[method](`/admin/v1${path}`).set('Authorization', basic(ROOT.user, adminPat));
    return body === undefined ? req : req.send(body as object);
  }

  async function getToken(params: Record<string, string | string[]>, credentials?: [string, string]) {
    const req = request(app).get(tokenQuery(params));
    if (credentials) req.set('Authorization', basic(...credentials));
    return req;
  }

  async function accessOf(params: Record<string, string | string[]>, credentials?: [string, string]) {
    const res = await getToken({ service: 'lading', ...params }, credentials);
    expect(res.status).toBe(200);
    return (await verified(app, res.body.token)).access;
  }

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true, loginFailureLimit: 1000 } });
    service = createAuthService({ db: deps.db, config: deps.config, logger: deps.logger });
    app = service.app;
    await meta.createUser(deps.db, ROOT.user, await hashPassword(ROOT.password), true);
    // The first PAT is made with root's password; every later admin call uses it.
    const pat = await request(app).post(`/admin/v1/users/${ROOT.user}/tokens`).set('Authorization', basic(ROOT.user, ROOT.password)).send({ name: 'cli' });
    expect(pat.status).toBe(201);
    adminPat = pat.body.token;
    for (const [name, password] of [['alice', 'alice-password'], ['bob', 'bob-password'], ['carol', 'carol-password']]) {
      await admin('post', '/users', { name, password }).expect(201);
    }
    await admin('post', '/namespaces', { prefix: 'team' }).expect(201);
    await admin('post', '/namespaces', { prefix: 'public', public: true }).expect(201);
    await admin('post', '/namespaces', { prefix: 'secret' }).expect(201);
    await admin('post', '/grants', { prefix: 'team', principal: 'user:alice', role: 'pull' }).expect(201);
    await admin('post', '/grants', { prefix: 'team', principal: 'user:bob', role: 'push' }).expect(201);
    await admin('post', '/grants', { prefix: 'team', principal: 'user:carol', role: 'delete' }).expect(201);
    const robot = await admin('post', '/robots', { name: 'ci' }).expect(201);
    robotSecret = robot.body.secret;
    await admin('post', '/grants', { prefix: 'team', principal: 'robot:ci', role: 'push' }).expect(201);
  });
  afterAll(async () => deps.close());

  describe('the token endpoint', () => {
    it('publishes its ES256 keys as a JWKS, public halves only', async () => {
      const res = await request(app).get('/.well-known/jwks.json').expect(200);
      expect(res.body.keys.length).toBeGreaterThanOrEqual(1);
      for (const key of res.body.keys) {
        expect(key).toEqual({ kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: expect.any(String), alg: 'ES256', use: 'sig' });
      }
    });

    it('issues an anonymous token (GET without credentials) with every claim, granting pull on public namespaces only', async () => {
      const res = await getToken({ service: 'lading', scope: ['repository:public/app:pull,push', 'repository:team/app:pull'] });
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body.access_token).toBe(res.body.token);
      expect(res.body.expires_in).toBe(300);
      expect(res.body.refresh_token).toBeUndefined();
      const [header] = res.body.token.split('.');
      expect(decodePart(header)).toMatchObject({ alg: 'ES256', typ: 'JWT', kid: expect.any(String) });
      const claims = await verified(app, res.body.token);
      expect(claims).toEqual({
        iss: 'lading-auth',
        sub: '',
        aud: 'lading',
        iat: expect.any(Number),
        nbf: claims.iat,
        exp: claims.iat + 300,
        jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
        access: [
          { type: 'repository', name: 'public/app', actions: ['pull'] },
          { type: 'repository', name: 'team/app', actions: [] },
        ],
      });
      expect(Math.abs(claims.iat - Date.now() / 1000)).toBeLessThan(5);
      expect(new Date(res.body.issued_at).getTime()).toBe(claims.iat * 1000);
      const again = await getToken({ service: 'lading' });
      expect((await verified(app, again.body.token)).jti).not.toBe(claims.jti);
    });

    it('authenticates Basic credentials: a password, a personal access token, and a robot secret', async () => {
      const byPassword = await getToken({ service: 'lading', scope: 'repository:team/app:pull' }, ['alice', 'alice-password']);
      expect(byPassword.status).toBe(200);
      expect(await verified(app, byPassword.body.token)).toMatchObject({ sub: 'alice', access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }] });

      const pat = await admin('post', '/users/alice/tokens', { name: 'laptop' }).expect(201);
      expect(pat.body.token).toMatch(/^lpat_/);
      const byPat = await getToken({ service: 'lading', scope: 'repository:team/app:pull' }, ['alice', pat.body.token]);
      expect(byPat.status).toBe(200);
      expect((await verified(app, byPat.body.token)).sub).toBe('alice');
      // A PAT is only good for its own user.
      expect((await getToken({ service: 'lading' }, ['bob', pat.body.token])).status).toBe(401);

      const byRobot = await getToken({ service: 'lading', scope: 'repository:team/app:push,pull' }, ['robot$ci', robotSecret]);
      expect(byRobot.status).toBe(200);
      expect(await verified(app, byRobot.body.token)).toMatchObject({ sub: 'robot$ci', access: [{ type: 'repository', name: 'team/app', actions: ['push', 'pull'] }] });
      // The robot's secret is not a password of a user called ci, nor of robot$ci without the prefix.
      expect((await getToken({ service: 'lading' }, ['ci', robotSecret])).status).toBe(401);
    });

    it('grants the intersection of what was asked and what is allowed, never an error for asking too much', async () => {
      const everything = ['repository:team/app:pull,push,delete,*', 'repository:secret/app:pull', 'registry:catalog:*', 'repository:teamx/app:pull', 'repository:team:pull'];
      expect(await accessOf({ scope: everything }, ['alice', 'alice-password'])).toEqual([
        { type: 'repository', name: 'team/app', actions: ['pull'] },
        { type: 'repository', name: 'secret/app', actions: [] },
        // A namespace covers itself and the names below it, not names that merely start with it.
        { type: 'repository', name: 'teamx/app', actions: [] },
        { type: 'repository', name: 'team', actions: ['pull'] },
      ]);
      expect((await accessOf({ scope: everything }, ['bob', 'bob-password']))[0]).toEqual({ type: 'repository', name: 'team/app', actions: ['pull', 'push'] });
      expect((await accessOf({ scope: everything }, ['carol', 'carol-password']))[0]).toEqual({ type: 'repository', name: 'team/app', actions: ['pull', 'delete'] });
      expect(await accessOf({ scope: everything }, [ROOT.user, adminPat])).toEqual([
        { type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete', '*'] },
        { type: 'repository', name: 'secret/app', actions: ['pull'] },
        { type: 'registry', name: 'catalog', actions: ['*'] },
        { type: 'repository', name: 'teamx/app', actions: ['pull'] },
        { type: 'repository', name: 'team', actions: ['pull'] },
      ]);
      // Deeper names are covered; public namespaces give every principal pull, and only pull.
      expect(await accessOf({ scope: ['repository:team/a/b/c:push', 'repository:public/x:pull,push,delete'] }, ['bob', 'bob-password'])).toEqual([
        { type: 'repository', name: 'team/a/b/c', actions: ['push'] },
        { type: 'repository', name: 'public/x', actions: ['pull'] },
      ]);
      // Malformed and unknown scopes are ignored, not errors.
      expect(await accessOf({ scope: ['garbage', 'repository:team/app', 'plugin:x:pull', ''] }, ['alice', 'alice-password'])).toEqual([]);
    });

    it('answers a token request for another service with 401 UNAUTHORIZED, and accepts one that names none', async () => {
      for (const res of [
        await getToken({ service: 'other-registry', scope: 'repository:team/app:pull' }, ['alice', 'alice-password']),
        await getToken({ service: 'other-registry' }),
        await request(app).post('/token').type('form').send({ grant_type: 'password', username: 'alice', password: 'alice-password', service: 'other' }),
      ]) {
        expect(res.status).toBe(401);
        expect(res.body.errors[0].code).toBe('UNAUTHORIZED');
        expect(res.body.token).toBeUndefined();
      }
      expect((await getToken({ scope: 'repository:team/app:pull' }, ['alice', 'alice-password'])).status).toBe(200);
    });

    it('answers wrong credentials with 401 UNAUTHORIZED without saying which part was wrong', async () => {
      const wrongPassword = await getToken({ service: 'lading' }, ['alice', 'not-her-password']);
      const unknownUser = await getToken({ service: 'lading' }, ['nobody', 'whatever-password']);
      const unknownRobot = await getToken({ service: 'lading' }, ['robot$nobody', 'whatever']);
      const wrongPat = await getToken({ service: 'lading' }, ['alice', 'lpat_not-a-real-token']);
      for (const res of [wrongPassword, unknownUser, unknownRobot, wrongPat]) {
        expect(res.status).toBe(401);
        expect(res.body.errors[0]).toMatchObject({ code: 'UNAUTHORIZED', message: 'invalid username or password' });
      }
      // A Basic header without a colon is malformed (most likely a password alone): refused, never anonymous.
      const noColon = await request(app).get(tokenQuery({ service: 'lading' })).set('Authorization', `Basic ${Buffer.from('alice-password').toString('base64')}`);
      expect(noColon.status).toBe(400);
      expect(noColon.body.errors[0].code).toBe('UNSUPPORTED');
      expect(JSON.stringify(noColon.body)).not.toContain('alice');
      expect(noColon.body.token).toBeUndefined();
    });

    it('answers a control character (NUL included) in a Basic username or password, or in the password grant, with 400 and the OCI envelope', async () => {
      const raw = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;
      const forms = [
        { grant_type: 'password', username: 'ali\u0000ce', password: 'alice-password' },
        { grant_type: 'password', username: 'alice', password: 'alice-pass\u0000word' },
        { grant_type: 'password', username: 'alice\r\nX-Injected: 1', password: 'alice-password' },
      ];
      const responses = [
        await request(app).get(tokenQuery({ service: 'lading' })).set('Authorization', raw('ali\u0000ce:alice-password')),
        await request(app).get(tokenQuery({ service: 'lading' })).set('Authorization', raw('alice:alice-pass\u0000word')),
        await request(app).get(tokenQuery({ service: 'lading' })).set('Authorization', raw('alice\u0007:alice-password')),
        await request(app).get('/admin/v1/users').set('Authorization', raw('ro\u0000ot:root-password-1')),
        ...(await Promise.all(forms.map((form) => request(app).post('/token').type('form').send({ service: 'lading', ...form })))),
      ];
      for (const res of responses) {
        expect(res.status).toBe(400);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        expect(res.body.errors[0]).toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/^malformed credentials/) });
      }
      // Nor can an admin set a password that no login could send.
      await admin('post', '/users', { name: 'tabby', password: 'tab\there-password' }).expect(400);
      await admin('put', '/users/alice/password', { password: 'tab\there-password' }).expect(400);
      expect(await meta.findUser(deps.db, 'tabby')).toBeNull();
    });

    it('implements the OAuth2 password grant, with a refresh token only for access_type=offline', async () => {
      const online = await request(app).post('/token').type('form').send({
        grant_type: 'password',
        username: 'bob',
        password: 'bob-password',
        service: 'lading',
        client_id: 'docker',
        scope: 'repository:team/app:pull,push',
      });
      expect(online.status).toBe(200);
      expect(online.body.refresh_token).toBeUndefined();
      expect(await verified(app, online.body.access_token)).toMatchObject({ sub: 'bob', access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }] });

      const offline = await request(app).post('/token').type('form').send({
        grant_type: 'password',
        username: 'bob',
        password: 'bob-password',
        service: 'lading',
        client_id: 'docker',
        access_type: 'offline',
        scope: 'repository:team/app:pull',
      });
      expect(offline.status).toBe(200);
      expect(offline.body.refresh_token).toMatch(/^lrt_/);

      const refreshed = await request(app).post('/token').type('form').send({
        grant_type: 'refresh_token',
        refresh_token: offline.body.refresh_token,
        service: 'lading',
        client_id: 'docker',
        scope: 'repository:team/other:push repository:secret/x:pull',
      });
      expect(refreshed.status).toBe(200);
      // Rotated on use: the answer carries the next refresh token of the family (see refresh-tokens.spec.ts).
      expect(refreshed.body.refresh_token).toMatch(/^lrt_/);
      expect(refreshed.body.refresh_token).not.toBe(offline.body.refresh_token);
      expect(await verified(app, refreshed.body.access_token)).toMatchObject({
        sub: 'bob',
        access: [
          { type: 'repository', name: 'team/other', actions: ['push'] },
          { type: 'repository', name: 'secret/x', actions: [] },
        ],
      });

      const bad = [
        { grant_type: 'password', username: 'bob', password: 'wrong-password' },
        { grant_type: 'password', username: 'bob' },
        { grant_type: 'refresh_token', refresh_token: 'lrt_forged' },
        { grant_type: 'refresh_token' },
      ];
      for (const form of bad) {
        const res = await request(app).post('/token').type('form').send({ service: 'lading', ...form });
        expect(res.status).toBe(401);
        expect(res.body.errors[0].code).toBe('UNAUTHORIZED');
      }
      const unsupported = await request(app).post('/token').type('form').send({ grant_type: 'client_credentials', service: 'lading' });
      expect(unsupported.status).toBe(400);
    });

    it('gives a refresh token for GET offline_token=true (as docker login asks), never to anonymous', async () => {
      const res = await getToken({ service: 'lading', offline_token: 'true', client_id: 'docker' }, ['alice', 'alice-password']);
      expect(res.body.refresh_token).toMatch(/^lrt_/);
      const anonymous = await getToken({ service: 'lading', offline_token: 'true' });
      expect(anonymous.status).toBe(200);
      expect(anonymous.body.refresh_token).toBeUndefined();
      const robot = await request(app).post('/token').type('form').send({ grant_type: 'password', username: 'robot$ci', password: robotSecret, access_type: 'offline', service: 'lading' });
      expect(robot.body.refresh_token).toMatch(/^lrt_/);
      const refreshed = await request(app).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: robot.body.refresh_token, scope: 'repository:team/app:push' });
      expect(await verified(app, refreshed.body.token)).toMatchObject({ sub: 'robot$ci', access: [{ type: 'repository', name: 'team/app', actions: ['push'] }] });
    });
  });

  describe('principals that must not get tokens', () => {
    it('a revoked robot: neither its secret nor its refresh token work any more', async () => {
      const created = await admin('post', '/robots', { name: 'doomed' }).expect(201);
      await admin('post', '/grants', { prefix: 'team', principal: 'robot:doomed', role: 'push' }).expect(201);
      const offline = await request(app).post('/token').type('form').send({ grant_type: 'password', username: 'robot$doomed', password: created.body.secret, access_type: 'offline', scope: 'repository:team/app:push' });
      expect(offline.status).toBe(200);
      const before = await verified(app, offline.body.token);
      expect(before.access).toEqual([{ type: 'repository', name: 'team/app', actions: ['push'] }]);

      await admin('delete', '/robots/doomed').expect(204);
      expect((await getToken({ service: 'lading', scope: 'repository:team/app:push' }, ['robot$doomed', created.body.secret])).status).toBe(401);
      const refresh = await request(app).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: offline.body.refresh_token });
      expect(refresh.status).toBe(401);
      // What it already holds dies with the token lifetime: the token it got before never outlives exp.
      expect(before.exp - before.iat).toBe(300);
      const listed = await admin('get', '/robots').expect(200);
      expect(listed.body.robots.find((r: { name: string }) => r.name === 'doomed').revokedAt).not.toBeNull();
      await admin('delete', '/robots/nobody').expect(404);
    });

    it('an expired robot', async () => {
      const created = await admin('post', '/robots', { name: 'shortlived', expiresIn: '1s' }).expect(201);
      expect((await getToken({ service: 'lading' }, ['robot$shortlived', created.body.secret])).status).toBe(200);
      await deps.db.query(`UPDATE robots SET expires_at = now() - interval '1 second' WHERE name = 'shortlived'`);
      expect((await getToken({ service: 'lading' }, ['robot$shortlived', created.body.secret])).status).toBe(401);
      await admin('post', '/robots', { name: 'badexpiry', expiresIn: 'tomorrow' }).expect(400);
    });

    it('a disabled user, by password, personal access token or refresh token; enabled again, it works again', async () => {
      await admin('post', '/users', { name: 'dave', password: 'dave-password' }).expect(201);
      const pat = await admin('post', '/users/dave/tokens', { name: 'ci' }).expect(201);
      const offline = await getToken({ service: 'lading', offline_token: 'true' }, ['dave', 'dave-password']);
      expect(offline.body.refresh_token).toBeDefined();

      await admin('post', '/users/dave/disable').expect(204);
      expect((await getToken({ service: 'lading' }, ['dave', 'dave-password'])).status).toBe(401);
      expect((await getToken({ service: 'lading' }, ['dave', pat.body.token])).status).toBe(401);
      expect((await request(app).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: offline.body.refresh_token })).status).toBe(401);
      expect((await admin('get', '/users').expect(200)).body.users.find((u: { name: string }) => u.name === 'dave')).toMatchObject({ disabled: true });

      await admin('post', '/users/dave/enable').expect(204);
      expect((await getToken({ service: 'lading' }, ['dave', pat.body.token])).status).toBe(200);
      await admin('post', '/users/nobody/disable').expect(404);
    });

    it('a deleted user, even when a new user of the same name is created later', async () => {
      await admin('post', '/users', { name: 'erin', password: 'erin-password' }).expect(201);
      await admin('post', '/grants', { prefix: 'secret', principal: 'user:erin', role: 'admin' }).expect(201);
      const offline = await getToken({ service: 'lading', offline_token: 'true' }, ['erin', 'erin-password']);
      await admin('delete', '/users/erin').expect(204);
      await admin('delete', '/users/erin').expect(404);
      expect((await getToken({ service: 'lading' }, ['erin', 'erin-password'])).status).toBe(401);

      // Someone else gets the name: they inherit neither the old refresh token nor the old grants.
      await admin('post', '/users', { name: 'erin', password: 'new-erin-password' }).expect(201);
      const refresh = await request(app).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: offline.body.refresh_token });
      expect(refresh.status).toBe(401);
      expect(await accessOf({ scope: 'repository:secret/app:pull' }, ['erin', 'new-erin-password'])).toEqual([{ type: 'repository', name: 'secret/app', actions: [] }]);
    });
  });

  describe('the admin API', () => {
    it('lets only admins in: 401 with a Basic challenge without credentials, 403 DENIED for others', async () => {
      const none = await request(app).get('/admin/v1/users');
      expect(none.status).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Basic /);
      expect(none.body.errors[0].code).toBe('UNAUTHORIZED');
      const bearer = await request(app).get('/admin/v1/users').set('Authorization', 'Bearer x');
      expect(bearer.status).toBe(401);
      const wrong = await request(app).get('/admin/v1/users').set('Authorization', basic(ROOT.user, 'wrong-password'));
      expect(wrong.status).toBe(401);
      const notAdmin = await request(app).get('/admin/v1/users').set('Authorization', basic('alice', 'alice-password'));
      expect(notAdmin.status).toBe(403);
      expect(notAdmin.body.errors[0].code).toBe('DENIED');
      const robot = await request(app).get('/admin/v1/users').set('Authorization', basic('robot$ci', robotSecret));
      expect(robot.status).toBe(403);
      // With root's password (not only its PAT).
      expect((await request(app).get('/admin/v1/users').set('Authorization', basic(ROOT.user, ROOT.password))).status).toBe(200);
    });

    it('manages users: create, list without hashes, change password, refuse duplicates and bad input', async () => {
      const created = await admin('post', '/users', { name: 'frank', password: 'frank-password', admin: true });
      expect(created.status).toBe(201);
      expect(created.body).toEqual({ name: 'frank', admin: true });
      await admin('post', '/users', { name: 'frank', password: 'frank-password' }).expect(409);
      await admin('post', '/users', { name: 'Bad Name', password: 'long-enough' }).expect(400);
      await admin('post', '/users', { name: 'robot$x', password: 'long-enough' }).expect(400);
      await admin('post', '/users', { name: 'shorty', password: 'short' }).expect(400);
      await admin('post', '/users', { name: 'nopass' }).expect(400);

      const list = await admin('get', '/users').expect(200);
      const frank = list.body.users.find((u: { name: string }) => u.name === 'frank');
      expect(frank).toEqual({ name: 'frank', isAdmin: true, disabled: false, createdAt: expect.any(String) });
      expect(JSON.stringify(list.body)).not.toMatch(/argon2|password/i);

      await admin('put', '/users/frank/password', { password: 'frank-password-2' }).expect(204);
      await admin('put', '/users/frank/password', { password: 'short' }).expect(400);
      await admin('put', '/users/nobody/password', { password: 'long-enough' }).expect(404);
      expect((await getToken({ service: 'lading' }, ['frank', 'frank-password'])).status).toBe(401);
      expect((await getToken({ service: 'lading' }, ['frank', 'frank-password-2'])).status).toBe(200);
      // The stored hash is argon2id.
      const row = await meta.findUser(deps.db, 'frank');
      expect(row?.passwordHash).toMatch(/^\$argon2id\$/);
      expect(await verifyPassword('frank-password-2', row!.passwordHash)).toBe(true);
    });

    it('manages robots: the secret is shown once, in the response that creates it', async () => {
      const created = await admin('post', '/robots', { name: 'builder', expiresIn: '720h' }).expect(201);
      expect(created.body).toEqual({ name: 'builder', namespace: null, login: 'robot$builder', secret: expect.stringMatching(/^lrs_/) });
      await admin('post', '/robots', { name: 'builder' }).expect(409);
      const list = await admin('get', '/robots').expect(200);
      const builder = list.body.robots.find((r: { name: string }) => r.name === 'builder');
      expect(builder).toEqual({ name: 'builder', namespace: null, login: 'robot$builder', expiresAt: expect.any(String), revokedAt: null, createdBy: ROOT.user });
      expect(JSON.stringify(list.body)).not.toContain(created.body.secret);
      expect(JSON.stringify(list.body)).not.toMatch(/argon2/);
      const expiresIn = new Date(builder.expiresAt).getTime() - Date.now();
      expect(expiresIn).toBeGreaterThan(719 * 3600_000);
      expect(expiresIn).toBeLessThanOrEqual(720 * 3600_000);
    });

    it('manages personal access tokens: shown once, listed by name, revocable, expiring', async () => {
      const created = await admin('post', '/users/bob/tokens', { name: 'ci-token' }).expect(201);
      await admin('post', '/users/bob/tokens', { name: 'ci-token' }).expect(409);
      await admin('post', '/users/nobody/tokens', { name: 'x' }).expect(409);
      const list = await admin('get', '/users/bob/tokens').expect(200);
      expect(list.body.tokens).toEqual([{ name: 'ci-token', expiresAt: null, revokedAt: null }]);
      expect(JSON.stringify(list.body)).not.toContain(created.body.token);
      expect((await getToken({ service: 'lading' }, ['bob', created.body.token])).status).toBe(200);

      await admin('delete', '/users/bob/tokens/ci-token').expect(204);
      await admin('delete', '/users/bob/tokens/nope').expect(404);
      expect((await getToken({ service: 'lading' }, ['bob', created.body.token])).status).toBe(401);

      const expiring = await admin('post', '/users/bob/tokens', { name: 'brief', expiresIn: '1h' }).expect(201);
      expect((await getToken({ service: 'lading' }, ['bob', expiring.body.token])).status).toBe(200);
      await deps.db.query(`UPDATE access_tokens SET expires_at = now() - interval '1 second' WHERE name = 'brief'`);
      expect((await getToken({ service: 'lading' }, ['bob', expiring.body.token])).status).toBe(401);
    });

    it('manages namespaces and grants, and tokens follow them', async () => {
      await admin('post', '/namespaces', { prefix: 'proj/sub' }).expect(201);
      await admin('post', '/namespaces', { prefix: 'Not Valid' }).expect(400);
      await admin('post', '/grants', { prefix: 'proj/sub', principal: 'user:alice', role: 'push' }).expect(201);
      await admin('post', '/grants', { prefix: 'nowhere', principal: 'user:alice', role: 'push' }).expect(404);
      await admin('post', '/grants', { prefix: 'proj/sub', principal: 'user:alice', role: 'owner' }).expect(400);
      await admin('post', '/grants', { prefix: 'proj/sub', principal: 'alice', role: 'pull' }).expect(400);
      await admin('post', '/grants', { prefix: 'proj/sub', principal: 'robot:ci', role: 'delete' }).expect(201);

      const list = await admin('get', '/namespaces').expect(200);
      expect(list.body.namespaces.find((n: { prefix: string }) => n.prefix === 'proj/sub')).toEqual({
        prefix: 'proj/sub',
        public: false,
        immutableTags: [],
        immutableTagExceptions: [],
        grants: [
          { principalType: 'robot', principalName: 'robot$ci', role: 'delete' },
          { principalType: 'user', principalName: 'alice', role: 'push' },
        ],
      });
      expect(list.body.namespaces.find((n: { prefix: string }) => n.prefix === 'public').public).toBe(true);

      expect(await accessOf({ scope: 'repository:proj/sub/app:push,delete' }, ['alice', 'alice-password'])).toEqual([{ type: 'repository', name: 'proj/sub/app', actions: ['push'] }]);
      expect(await accessOf({ scope: 'repository:proj/sub/app:push,delete' }, ['robot$ci', robotSecret])).toEqual([{ type: 'repository', name: 'proj/sub/app', actions: ['delete'] }]);
      expect(await accessOf({ scope: 'repository:proj/other:pull' }, ['alice', 'alice-password'])).toEqual([{ type: 'repository', name: 'proj/other', actions: [] }]);

      await request(app)
        .delete('/admin/v1/grants')
        .set('Authorization', basic(ROOT.user, adminPat))
        .send({ prefix: 'proj/sub', principal: 'user:alice', role: 'push' })
        .expect(204);
      await request(app)
        .delete('/admin/v1/grants')
        .set('Authorization', basic(ROOT.user, adminPat))
        .send({ prefix: 'proj/sub', principal: 'user:alice', role: 'push' })
        .expect(404);
      expect(await accessOf({ scope: 'repository:proj/sub/app:push' }, ['alice', 'alice-password'])).toEqual([{ type: 'repository', name: 'proj/sub/app', actions: [] }]);

      // A private namespace made public: anonymous pull; deleted: its grants go with it.
      await admin('post', '/namespaces', { prefix: 'proj/sub', public: true }).expect(201);
      expect(await accessOf({ scope: 'repository:proj/sub/app:pull' })).toEqual([{ type: 'repository', name: 'proj/sub/app', actions: ['pull'] }]);
      await admin('delete', '/namespaces?prefix=proj/sub').expect(204);
      await admin('delete', '/namespaces?prefix=proj/sub').expect(404);
      expect(await accessOf({ scope: 'repository:proj/sub/app:pull,delete' }, ['robot$ci', robotSecret])).toEqual([{ type: 'repository', name: 'proj/sub/app', actions: [] }]);
      expect(await accessOf({ scope: 'repository:proj/sub/app:pull' })).toEqual([{ type: 'repository', name: 'proj/sub/app', actions: [] }]);
    });

    it('rotates signing keys with no failed request: tokens signed before still verify against the JWKS after', async () => {
      const before = await getToken({ service: 'lading', scope: 'repository:team/app:pull' }, ['alice', 'alice-password']);
      const oldKid = decodePart(before.body.token.split('.')[0]).kid;
      const jwksBefore = (await request(app).get('/.well-known/jwks.json')).body;

      const rotated = await admin('post', '/keys/rotate').expect(201);
      expect(rotated.body.kid).not.toBe(oldKid);
      const jwksAfter = (await request(app).get('/.well-known/jwks.json')).body;
      expect(jwksAfter.keys.map((k: { kid: string }) => k.kid)).toEqual(expect.arrayContaining([oldKid, rotated.body.kid]));

      // Verified offline against the JWKS published after the rotation.
      expect((await verified(app, before.body.token)).sub).toBe('alice');
      const after = await getToken({ service: 'lading', scope: 'repository:team/app:pull' }, ['alice', 'alice-password']);
      expect(decodePart(after.body.token.split('.')[0]).kid).toBe(rotated.body.kid);
      expect((await verified(app, after.body.token)).sub).toBe('alice');
      // A gateway that cached the JWKS from before the rotation verifies old tokens from its cache; a new token names
      // a kid it does not know, which is its signal to reload (see the gateway's verifier).
      const options = { issuer: 'lading-auth', audience: 'lading', leewaySeconds: 60, now: Date.now };
      expect(verifyToken(before.body.token, keysFromJwks(jwksBefore), options).sub).toBe('alice');
      expect(() => verifyToken(after.body.token, keysFromJwks(jwksBefore), options)).toThrow('token signed by an unknown key');

      // A second rotation keeps both older keys published until their grace ends; then the oldest goes away.
      const second = await admin('post', '/keys/rotate').expect(201);
      expect((await verified(app, before.body.token)).sub).toBe('alice');
      expect((await verified(app, after.body.token)).sub).toBe('alice');
      await deps.db.query(`UPDATE signing_keys SET expires_at = now() - interval '1 second' WHERE kid = $1`, [oldKid]);
      const published = (await request(app).get('/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid);
      expect(published).not.toContain(oldKid);
      expect(published).toEqual(expect.arrayContaining([rotated.body.kid, second.body.kid]));
    });

    it('publishes a rotation made by another replica without waiting for its cache', async () => {
      // Two auth replicas over one database: one rotates, the other is asked for the JWKS by a gateway.
      const replica = createAuthService({ db: deps.db, config: deps.config, logger: deps.logger });
      await request(replica.app).get('/.well-known/jwks.json').expect(200);
      const rotated = await admin('post', '/keys/rotate').expect(201);
      const token = await getToken({ service: 'lading' }, ['alice', 'alice-password']);
      expect(decodePart(token.body.token.split('.')[0]).kid).toBe(rotated.body.kid);
      const published = (await request(replica.app).get('/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid);
      expect(published).toContain(rotated.body.kid);
    });
  });
});

describe('login limits', () => {
  let deps: TestDeps;
  let server: http.Server;
  let port: number;
  /** Password checks that reached the hasher (a wrong guess that was refused before it never does). */
  let verifications = 0;
  const LIMIT = 3;
  const ADDRESS_LIMIT = 6;
  const ACCOUNT_LIMIT = 9;

  type Answer = { status: number; headers: http.IncomingHttpHeaders; body: Record<string, unknown> };

  /** A token request from a given loopback address (127.0.0.0/8 is all loopback). */
  function tokenFrom(localAddress: string, user: string, password: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, path: '/token?service=lading', localAddress, agent: false, headers: { authorization: basic(user, password) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  const codeOf = (answer: Answer) => (answer.body.errors as Array<{ code: string }>)[0].code;

  function expectTooMany(answer: Answer): void {
    expect(answer.status).toBe(429);
    expect(codeOf(answer)).toBe('TOOMANYREQUESTS');
    const retryAfter = Number(answer.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
  }

  beforeAll(async () => {
    deps = await createTestDeps({
      auth: { enabled: true, loginFailureLimit: LIMIT, loginAddressLimit: ADDRESS_LIMIT, loginAccountLimit: ACCOUNT_LIMIT, loginWindow: '15m' },
    });
    const passwords = {
      hash: hashPassword,
      verify: (password: string, encoded: string) => {
        verifications++;
        return verifyPassword(password, encoded);
      },
    };
    const { app } = createAuthService({ db: deps.db, config: deps.config, logger: deps.logger, passwords });
    for (const name of ['alice', 'bob', 'carol', 'dan', 'erin']) await meta.createUser(deps.db, name, await hashPassword(`${name}-password`), false);
    await meta.createRobot(deps.db, 'ci', await hashPassword('lrs_ci-robot-secret'), null, 'root');
    await meta.createAccessToken(deps.db, 'bob', 'ci', secretDigest('lpat_bob-ci-token'), null);
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await deps.close();
  });

  it('refuses a guesser on one account from one address with 429, while the owner still logs in from another address', async () => {
    for (let i = 0; i < LIMIT; i++) {
      const res = await tokenFrom('127.0.1.1', 'alice', 'wrong-password');
      expect(res.status).toBe(401);
      expect(codeOf(res)).toBe('UNAUTHORIZED');
    }
    expectTooMany(await tokenFrom('127.0.1.1', 'alice', 'another-guess'));
    // The owner, from an address that has not been failing, gets in: eleven wrong guesses no longer lock anyone out.
    expect((await tokenFrom('127.0.1.50', 'alice', 'alice-password')).status).toBe(200);
    // The guesser stays refused, whatever it sends (a right password from there too), and is not let off by the owner.
    expectTooMany(await tokenFrom('127.0.1.1', 'alice', 'yet-another-guess'));
    expectTooMany(await tokenFrom('127.0.1.1', 'alice', 'alice-password'));
    // Another account from the guessing address is not affected.
    expect((await tokenFrom('127.0.1.1', 'bob', 'bob-password')).status).toBe(200);
    // When the window has passed, the pair may try again.
    await deps.db.query(`UPDATE login_failures SET window_start = now() - interval '16 minutes' WHERE key LIKE 'pair:%@127.0.1.1'`);
    expect((await tokenFrom('127.0.1.1', 'alice', 'alice-password')).status).toBe(200);
  });

  it('counts every attempt before its password is checked: of 50 concurrent wrong guesses, only the limit reach the check', async () => {
    const before = verifications;
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => tokenFrom('127.0.4.1', 'dan', `wrong-${i}`)));
    const unauthorized = answers.filter((a) => a.status === 401);
    const refused = answers.filter((a) => a.status === 429);
    expect(unauthorized).toHaveLength(LIMIT);
    expect(refused).toHaveLength(50 - LIMIT);
    for (const answer of refused) expectTooMany(answer);
    expect(verifications - before).toBe(LIMIT);
  });

  it('limits one address over every account, without locking those accounts elsewhere', async () => {
    for (const user of ['mallory1', 'mallory2', 'mallory3', 'mallory4', 'mallory5', 'carol']) {
      expect((await tokenFrom('127.0.2.1', user, 'guess')).status).toBe(401);
    }
    expectTooMany(await tokenFrom('127.0.2.1', 'bob', 'bob-password'));
    // The admin API and the POST form share the limit.
    const form = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: 'POST', path: '/token', localAddress: '127.0.2.1', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end('grant_type=password&username=carol&password=carol-password');
    });
    expect(form).toBe(429);
    expect((await tokenFrom('127.0.2.2', 'bob', 'bob-password')).status).toBe(200);
    expect((await tokenFrom('127.0.2.2', 'carol', 'carol-password')).status).toBe(200);
  });

  it('limits one account over every address, so guessing spread over many addresses stays throttled', async () => {
    for (let i = 0; i < ACCOUNT_LIMIT; i++) expect((await tokenFrom(`127.0.5.${i + 1}`, 'erin', 'guess')).status).toBe(401);
    // The ceiling is the account's, from every address: fresh addresses are refused too until the window ends.
    expectTooMany(await tokenFrom('127.0.5.200', 'erin', 'another-guess'));
    expectTooMany(await tokenFrom('127.0.5.201', 'erin', 'guess-again'));
  });

  it("forgets a pair's failures after a correct password from it, and never counts a correct password against an address", async () => {
    expect((await tokenFrom('127.0.3.1', 'carol', 'wrong')).status).toBe(401);
    expect((await tokenFrom('127.0.3.1', 'carol', 'wrong')).status).toBe(401);
    expect((await tokenFrom('127.0.3.1', 'carol', 'carol-password')).status).toBe(200);
    expect((await tokenFrom('127.0.3.1', 'carol', 'wrong')).status).toBe(401);
    expect((await tokenFrom('127.0.3.1', 'carol', 'wrong')).status).toBe(401);
    expect((await tokenFrom('127.0.3.1', 'carol', 'carol-password')).status).toBe(200);
    // Many correct logins from one address (a CI runner) are never refused: each gives its attempt back.
    for (let i = 0; i < ADDRESS_LIMIT + 2; i++) expect((await tokenFrom('127.0.3.9', 'bob', 'bob-password')).status).toBe(200);
  });

  it('lets many CI jobs log in at once from one address with a robot secret or a personal access token', async () => {
    const answers = await Promise.all([
      ...Array.from({ length: 3 * ADDRESS_LIMIT }, () => tokenFrom('127.0.6.1', 'robot$ci', 'lrs_ci-robot-secret')),
      ...Array.from({ length: 3 * ADDRESS_LIMIT }, () => tokenFrom('127.0.6.1', 'bob', 'lpat_bob-ci-token')),
    ]);
    expect(answers.map((a) => a.status)).toEqual(Array(6 * ADDRESS_LIMIT).fill(200));
  });

  it('still throttles wrong robot secrets and personal access tokens, counting each failure after its check', async () => {
    for (let i = 0; i < LIMIT; i++) expect((await tokenFrom('127.0.7.1', 'robot$ci', `lrs_guess-${i}`)).status).toBe(401);
    expectTooMany(await tokenFrom('127.0.7.1', 'robot$ci', 'lrs_ci-robot-secret'));
    for (let i = 0; i < LIMIT; i++) expect((await tokenFrom('127.0.7.2', 'bob', `lpat_guess-${i}`)).status).toBe(401);
    expectTooMany(await tokenFrom('127.0.7.2', 'bob', 'lpat_bob-ci-token'));
    expect((await tokenFrom('127.0.7.3', 'robot$ci', 'lrs_ci-robot-secret')).status).toBe(200);
  });

  it('counts an IPv6 client by its /64 and an IPv4-mapped client as its IPv4 address', () => {
    const keys = (address: string) => loginLimits(deps.config, 'alice', address);
    expect(keys('2001:db8:1:2::1').address.key).toBe(keys('2001:db8:1:2:ffff:ffff:ffff:fffe').address.key);
    expect(keys('2001:db8:1:2::1').pair.key).toBe(keys('2001:db8:1:2:aaaa::9').pair.key);
    expect(keys('2001:db8:1:2::1').address.key).not.toBe(keys('2001:db8:1:3::1').address.key);
    expect(keys('::ffff:192.0.2.7').address.key).toBe(keys('192.0.2.7').address.key);
    expect(keys('192.0.2.7').address.key).not.toBe(keys('192.0.2.8').address.key);
  });

  it('never stores or logs the name a failed login was tried with when it is not an account (it may be a password)', async () => {
    const lines: string[] = [];
    const logger = createLogger({ service: 'test', level: 'debug', destination: new Writable({ write: (chunk: Buffer, _enc, done) => done(void lines.push(chunk.toString('utf8'))) }) });
    const { app } = createAuthService({ db: deps.db, config: deps.config, logger });
    await request(app).get('/token').set('Authorization', basic('Tr0ub4dor&3-typed-as-username', 'x')).expect(401);
    await request(app).get('/token').set('Authorization', basic('bob', 'wrong-bob-password')).expect(401);
    const keys = (await deps.db.query<{ key: string }>(`SELECT key FROM login_failures`)).rows.map((r) => r.key);
    expect(keys.join('\n')).not.toContain('Tr0ub4dor');
    expect(lines.join('')).not.toContain('Tr0ub4dor');
    expect(lines.join('')).not.toContain('wrong-bob-password');
    expect(lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'failed login')).toEqual([
      expect.objectContaining({ unknownAccount: true }),
      expect.objectContaining({ user: 'bob' }),
    ]);
  });
});

describe('password checks off the event loop', () => {
  let deps: TestDeps;
  let pool: PasswordPool;
  let server: http.Server;
  let port: number;
  /** Requests the server has been sent so far. */
  let received = 0;

  function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, agent: false, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  async function until(condition: () => boolean): Promise<void> {
    while (!condition()) await new Promise((resolve) => setImmediate(resolve));
  }

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true, loginFailureLimit: 1000, loginAddressLimit: 1000, loginAccountLimit: 1000, hashWorkers: 1, hashQueue: 64 } });
    pool = passwordPoolFromConfig(deps.config);
    const { app } = createAuthService({ db: deps.db, config: deps.config, logger: deps.logger, passwords: pool });
    await meta.createUser(deps.db, 'alice', await hashPassword('alice-password'), false);
    server = http.createServer(app);
    server.on('request', () => received++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await pool.close();
    await deps.close();
  });

  it('answers an unrelated request while 40 logins are being checked, before they are done', async () => {
    const order: string[] = [];
    const start = received;
    const logins = Array.from({ length: 40 }, (_, i) =>
      get('/token?service=lading', { authorization: basic('alice', i % 2 ? 'alice-password' : 'wrong-password') }).then((res) => {
        order.push('login');
        return res.status;
      }),
    );
    await until(() => received - start === 40);
    let waitingForWorker = 0;
    const unrelated = get('/.well-known/jwks.json').then((res) => {
      order.push('jwks');
      waitingForWorker = pool.pending();
      return res.status;
    });
    expect(await unrelated).toBe(200);
    // The password checks were in the worker's queue, not on this thread: most were still there when the JWKS went.
    expect(waitingForWorker).toBeGreaterThanOrEqual(30);
    const statuses = await Promise.all(logins);
    expect(statuses.filter((s) => s === 200)).toHaveLength(20);
    expect(statuses.filter((s) => s === 401)).toHaveLength(20);
    expect(order.indexOf('jwks')).toBeLessThan(10);
  });

  it('answers 429 with Retry-After at once when the workers and their queue are full, and counts nothing against the sender', async () => {
    const config = { ...deps.config, auth: { ...deps.config.auth, hashWorkers: 1, hashQueue: 2 } };
    const small = passwordPoolFromConfig(config);
    await deps.db.query(`DELETE FROM login_failures`);
    try {
      const { app } = createAuthService({ db: deps.db, config, logger: deps.logger, passwords: small });
      const order: string[] = [];
      const answers = await Promise.all(
        Array.from({ length: 12 }, () =>
          request(app)
            .get('/token?service=lading')
            .set('Authorization', basic('alice', 'alice-password'))
            .then((res) => {
              order.push(String(res.status));
              return res;
            }),
        ),
      );
      const busy = answers.filter((a) => a.status === 429);
      expect(answers.filter((a) => a.status === 200)).toHaveLength(3);
      expect(busy).toHaveLength(9);
      for (const res of busy) {
        expect(res.body.errors[0]).toMatchObject({ code: 'TOOMANYREQUESTS', message: 'too many logins at once; try again shortly' });
        expect(res.headers['retry-after']).toBe('1');
      }
      // Refused at once: every 429 was sent before the first login that waited for the worker was done.
      expect(order.slice(0, 9)).toEqual(Array(9).fill('429'));
      // A refusal for a full pool is not a failed login: it took nothing from the login limits.
      expect((await deps.db.query(`SELECT coalesce(sum(failures), 0)::int AS n FROM login_failures`)).rows).toEqual([{ n: 0 }]);
    } finally {
      await small.close();
    }
  });
});

describe('bootstrapAdmin', () => {
  let deps: TestDeps;
  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true } });
  });
  beforeEach(async () => {
    await deps.db.query(`DELETE FROM users`);
  });
  afterAll(async () => deps.close());

  function capture() {
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString('utf8')));
        done();
      },
    });
    return { lines, logger: createLogger({ service: 'test', level: 'info', destination }) };
  }

  const withAdmin = (user: string, password: string) => parseConfig({ auth: { enabled: true }, admin: { user, password }, log: { level: 'silent' } });

  it('creates the first admin from the environment when none exists, and says so', async () => {
    const { lines, logger } = capture();
    await bootstrapAdmin(deps.db, withAdmin('boss', 'boss-password'), logger, hashPassword);
    const user = await meta.findUser(deps.db, 'boss');
    expect(user).toMatchObject({ name: 'boss', isAdmin: true, disabled: false });
    expect(await verifyPassword('boss-password', user!.passwordHash)).toBe(true);
    expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/created the first admin/)]);
    expect(JSON.stringify(lines)).not.toContain('boss-password');
    // The admin it made can use the admin API at once.
    const { app } = createAuthService({ db: deps.db, config: deps.config, logger });
    expect((await request(app).get('/admin/v1/users').set('Authorization', basic('boss', 'boss-password'))).status).toBe(200);
  });

  it('ignores the environment, with a log line, once an admin exists (and never changes that admin)', async () => {
    await bootstrapAdmin(deps.db, withAdmin('boss', 'boss-password'), capture().logger, hashPassword);
    const { lines, logger } = capture();
    await bootstrapAdmin(deps.db, withAdmin('boss', 'other-password'), logger, hashPassword);
    await bootstrapAdmin(deps.db, withAdmin('second', 'second-password'), logger, hashPassword);
    expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/ignored/), expect.stringMatching(/ignored/)]);
    expect(await meta.findUser(deps.db, 'second')).toBeNull();
    expect(await verifyPassword('boss-password', (await meta.findUser(deps.db, 'boss'))!.passwordHash)).toBe(true);
  });

  it('does nothing without the setting (no default password), and never claims to create a user it did not', async () => {
    const { lines, logger } = capture();
    await bootstrapAdmin(deps.db, deps.config, logger, hashPassword);
    expect(await meta.adminExists(deps.db)).toBe(false);
    expect((await deps.db.query(`SELECT count(*)::int AS n FROM users`)).rows[0]).toEqual({ n: 0 });

    // The name is taken by a user who is not an admin: that user is not promoted, and the log says so.
    await meta.createUser(deps.db, 'boss', await hashPassword('user-password'), false);
    await bootstrapAdmin(deps.db, withAdmin('boss', 'boss-password'), logger, hashPassword);
    expect(await meta.adminExists(deps.db)).toBe(false);
    expect(await verifyPassword('user-password', (await meta.findUser(deps.db, 'boss'))!.passwordHash)).toBe(true);
    expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/not an active admin; it was left unchanged/)]);
  });
});
