/**
 * Directory sign-in against the real test directory (tools/infra/slapd, seeded from tools/infra/test/ldap-seed.ldif),
 * reached through a TCP relay that a test cuts to play an outage. The auth service runs on test deps with a clock
 * the tests move, so cache lifetimes pass without waiting.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import request from 'supertest';
import type { Express } from 'express';
import { Attribute, Change, Client } from 'ldapts';
import { type TokenClaims, hashPassword, keysFromJwks, verifyToken } from '@lading/access';
import { type LadingConfigInput, parseConfig } from '@lading/config';
import * as meta from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { type TcpRelay, type TestDeps, createTestDeps, startTcpRelay, testDirectory } from '@lading/testing';
import { type AuthService, createAuthService } from './auth-service';

const ROOT = { user: 'root', password: 'root-password-1' };
const ALICE = ['alice', 'alice-directory-pw'] as const;
const BOB = ['bob', 'bob-directory-pw'] as const;
const DAVE = ['dave', 'dave-directory-pw'] as const;
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const MINUTE = 60_000;

describe('LDAP sign-in', () => {
  const directory = testDirectory();
  const people = `ou=people,${directory.base}`;
  const groups = `ou=groups,${directory.base}`;
  let relay: TcpRelay;
  let deps: TestDeps;
  let service: AuthService;
  let app: Express;
  let adminPat: string;
  let clock = Date.now();
  const now = () => clock;
  const lines: string[] = [];

  /** The `auth.ldap` settings for the test directory, through the relay unless a test says otherwise. */
  function ldapSettings(overrides: Record<string, unknown> = {}) {
    return {
      url: `ldap://127.0.0.1:${relay.port}`,
      bindDn: directory.adminDn,
      bindPassword: directory.adminPassword,
      userBase: people,
      groupBase: groups,
      timeout: '2s',
      cacheTtl: '5m',
      negativeCacheTtl: '30s',
      ...overrides,
    };
  }

  function capturingLogger() {
    return createLogger({ service: 'test', level: 'debug', destination: new Writable({ write: (chunk: Buffer, _enc, done) => done(void lines.push(chunk.toString('utf8'))) }) });
  }

  /** A separate auth service over the same database, for settings the main one does not have. */
  function serviceWith(ldap: Record<string, unknown>): Express {
    const config = parseConfig({ auth: { enabled: true, loginFailureLimit: 1000, ldap: ldapSettings(ldap) } } as LadingConfigInput);
    return createAuthService({ db: deps.db, config, logger: capturingLogger(), now }).app;
  }

  function admin(method: 'get' | 'post' | 'delete', path: string, body?: unknown) {
    const req = request(app)[method](`/admin/v1${path}`).set('Authorization', basic(ROOT.user, adminPat));
    return body === undefined ? req : req.send(body as object);
  }

  function token(credentials: readonly [string, string], scope: string, extra: Record<string, string> = {}, on: Express = app) {
    const query = new URLSearchParams({ service: 'lading', scope, ...extra });
    return request(on).get(`/token?${query}`).set('Authorization', basic(...credentials));
  }

  /** Verifies a token as a gateway does, offline against the published keys, at the test's clock. */
  async function verified(raw: string): Promise<TokenClaims> {
    const jwks = await request(app).get('/.well-known/jwks.json').expect(200);
    return verifyToken(raw, keysFromJwks(jwks.body), { issuer: 'lading-auth', audience: 'lading', leewaySeconds: 60, now });
  }

  /** The actions a sign-in gets on one repository (the request must succeed). */
  async function actions(credentials: readonly [string, string], repository: string, on: Express = app): Promise<string[]> {
    const res = await token(credentials, `repository:${repository}:pull,push`, {}, on);
    expect(res.status).toBe(200);
    return (await verified(res.body.token)).access[0].actions;
  }

  /** An admin connection to the test directory (what ldapmodify would do). */
  async function directoryAdmin<T>(work: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({ url: directory.url, timeout: 5000, connectTimeout: 5000 });
    try {
      await client.bind(directory.adminDn, directory.adminPassword);
      return await work(client);
    } finally {
      await client.unbind();
    }
  }

  beforeAll(async () => {
    relay = await startTcpRelay('127.0.0.1', Number(new URL(directory.url).port));
    deps = await createTestDeps({ auth: { enabled: true, loginFailureLimit: 1000, ldap: ldapSettings() } } as LadingConfigInput);
    service = createAuthService({ db: deps.db, config: deps.config, logger: capturingLogger(), now });
    app = service.app;
    await meta.createUser(deps.db, ROOT.user, await hashPassword(ROOT.password), true);
    const pat = await request(app).post(`/admin/v1/users/${ROOT.user}/tokens`).set('Authorization', basic(ROOT.user, ROOT.password)).send({ name: 'cli' });
    expect(pat.status).toBe(201);
    adminPat = pat.body.token;
    for (const prefix of ['plat', 'devs', 'loops']) await admin('post', '/namespaces', { prefix }).expect(201);
    await admin('post', '/grants', { prefix: 'plat', principal: 'group:platform', role: 'pull' }).expect(201);
    await admin('post', '/grants', { prefix: 'devs', principal: 'group:devs', role: 'push' }).expect(201);
    await admin('post', '/grants', { prefix: 'loops', principal: 'group:loop-b', role: 'pull' }).expect(201);
  });
  afterAll(async () => {
    await relay?.close();
    await deps?.close();
  });

  it('signs a directory user in with docker-style GET /token and Basic credentials, making an ldap-sourced user row', async () => {
    const res = await token(ALICE, 'repository:devs/app:pull', { offline_token: 'true' }).expect(200);
    const claims = await verified(res.body.token);
    expect(claims.sub).toBe('alice');
    expect(res.body.refresh_token).toMatch(/^lrt_/);
    const row = await meta.findUser(deps.db, 'alice');
    expect(row).toMatchObject({ name: 'alice', source: 'ldap', isAdmin: false, disabled: false });
    expect(row?.passwordHash).toBe('!');
    // its password is the directory's: the admin API will not set a local one
    const put = await request(app).put('/admin/v1/users/alice/password').set('Authorization', basic(ROOT.user, adminPat)).send({ password: 'a-local-password' });
    expect(put.status).toBe(409);
    expect(put.body.errors[0].message).toMatch(/signs in with the directory/);
  });

  it('gives a user in a nested group the grants of the outer group, and refuses push where only pull is granted', async () => {
    // alice is in devs, and devs is in platform: push on devs/*, pull only on plat/*
    expect(await actions(ALICE, 'devs/app')).toEqual(['pull', 'push']);
    expect(await actions(ALICE, 'plat/app')).toEqual(['pull']);
    // bob is in no group
    expect(await actions(BOB, 'plat/app')).toEqual([]);
  });

  it('resolves a cycle of groups (loop-a and loop-b hold each other) without looping', async () => {
    expect(await actions(DAVE, 'loops/app')).toEqual(['pull']);
  });

  it('answers a wrong directory password or an unknown user with 401, never a 5xx', async () => {
    const wrong = await token(['alice', 'not-her-password'], 'repository:plat/app:pull');
    expect(wrong.status).toBe(401);
    expect(wrong.body.errors[0].code).toBe('UNAUTHORIZED');
    expect((await token(['nobody-here', 'whatever-password'], 'repository:plat/app:pull')).status).toBe(401);
    // the same wrong password again is answered from the negative cache, the right one is not held back by it
    expect((await token(['alice', 'not-her-password'], 'repository:plat/app:pull')).status).toBe(401);
    expect((await token(ALICE, 'repository:plat/app:pull')).status).toBe(200);
  });

  it('escapes LDAP filter syntax in the username, so an injection matches no one', async () => {
    for (const username of ['*', '*)(uid=*', 'alice)(uid=*', 'al*', 'alice)(|(uid=*)', '*)(objectClass=*))(&(uid=alice']) {
      const res = await token([username, ALICE[1]], 'repository:plat/app:pull');
      expect({ username, status: res.status }).toEqual({ username, status: 401 });
    }
    expect(await meta.findUser(deps.db, '*')).toBeNull();
  });

  it('checks a local user with the same name as a directory user against the local password only', async () => {
    await admin('post', '/users', { name: 'carol', password: 'carol-local-password' }).expect(201);
    expect((await token(['carol', 'carol-directory-pw'], 'repository:plat/app:pull')).status).toBe(401);
    expect(await actions(['carol', 'carol-local-password'], 'plat/app')).toEqual([]);
    expect((await meta.findUser(deps.db, 'carol'))?.source).toBe('local');
  });

  it('carries the groups in the console session: its bearer tokens hold the group grants', async () => {
    const res = await request(app).post('/ui/api/session').send({ username: ALICE[0], password: ALICE[1] }).expect(200);
    const session = /lses_[^;]+/.exec(String(res.headers['set-cookie']))?.[0] as string;
    const raw = await service.sessionToken(session, [{ type: 'repository', name: 'plat/app', actions: ['pull', 'push'] }]);
    expect((await verified(raw as string)).access[0].actions).toEqual(['pull']);
  });

  it('takes a group away at the next sign-in after the user leaves it in the directory; the session it had keeps its groups until it ends', async () => {
    const uid = `eve${randomBytes(4).toString('hex')}`;
    const dn = `uid=${uid},${people}`;
    const password = `${uid}-directory-pw`;
    const devs = `cn=devs,${groups}`;
    const membership = (operation: 'add' | 'delete') => new Change({ operation, modification: new Attribute({ type: 'member', values: [dn] }) });
    await directoryAdmin((c) => c.add(dn, { objectClass: 'inetOrgPerson', uid, cn: uid, sn: 'Test', userPassword: password }));
    try {
      await directoryAdmin((c) => c.modify(devs, membership('add')));
      const first = await token([uid, password], 'repository:plat/app:pull', { offline_token: 'true' }).expect(200);
      expect((await verified(first.body.token)).access[0].actions).toEqual(['pull']);

      await directoryAdmin((c) => c.modify(devs, membership('delete')));
      clock += 6 * MINUTE; // past auth.ldap.cacheTtl: the next sign-in asks the directory
      expect(await actions([uid, password], 'plat/app')).toEqual([]);

      // the identity token of the first sign-in still speaks for that sign-in's groups, until it expires
      const refreshed = await request(app)
        .post('/token')
        .type('form')
        .send({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token, service: 'lading', scope: 'repository:plat/app:pull' })
        .expect(200);
      expect((await verified(refreshed.body.token)).access[0].actions).toEqual(['pull']);
    } finally {
      await directoryAdmin((c) => c.del(dn));
    }
  });

  it('keeps cached sign-ins and issued tokens working through a directory outage, and answers uncached ones 503', async () => {
    clock += 6 * MINUTE; // every cached sign-in has expired
    const before = await token(ALICE, 'repository:plat/app:pull', { offline_token: 'true' }).expect(200);
    await relay.cut();
    try {
      // cached: within cacheTtl, no directory needed
      expect(await actions(ALICE, 'plat/app')).toEqual(['pull']);
      // uncached: the directory cannot say, which is neither a yes nor a wrong password
      const bob = await token(BOB, 'repository:plat/app:pull');
      expect(bob.status).toBe(503);
      expect(bob.body.errors[0]).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('directory') });
      // a token issued before verifies offline, and the identity token still gets new ones
      expect((await verified(before.body.token)).access[0].actions).toEqual(['pull']);
      await request(app).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: before.body.refresh_token, service: 'lading' }).expect(200);
      // past cacheTtl the cached sign-in is gone too
      clock += 6 * MINUTE;
      expect((await token(ALICE, 'repository:plat/app:pull')).status).toBe(503);
    } finally {
      await relay.restore();
    }
    expect(await actions(ALICE, 'plat/app')).toEqual(['pull']);
  });

  it('reaches the directory over LDAPS and over StartTLS with the CA of auth.ldap.caFile', async () => {
    const ldaps = serviceWith({ url: directory.ldapsUrl, caFile: directory.caFile });
    expect(await actions(ALICE, 'plat/app', ldaps)).toEqual(['pull']);
    const startTls = serviceWith({ url: directory.url, startTls: true, caFile: directory.caFile });
    expect(await actions(ALICE, 'plat/app', startTls)).toEqual(['pull']);
    // without the CA the certificate is not trusted: the directory cannot be used, which is a 503
    const untrusted = serviceWith({ url: directory.ldapsUrl });
    expect((await token(ALICE, 'repository:plat/app:pull', {}, untrusted)).status).toBe(503);
  });

  it('answers 503 when the service account is refused, and reads its password from bindPasswordFile', async () => {
    const refused = serviceWith({ bindPassword: 'wrong-bind-password-123' });
    expect((await token(ALICE, 'repository:plat/app:pull', {}, refused)).status).toBe(503);
    const { writeFile, mkdtemp } = await import('node:fs/promises');
    const path = await import('node:path');
    const file = path.join(await mkdtemp(path.join(deps.storageRoot, 'bind-')), 'bind-password');
    await writeFile(file, `${directory.adminPassword}\n`);
    const fromFile = serviceWith({ bindPassword: undefined, bindPasswordFile: file });
    expect(await actions(ALICE, 'plat/app', fromFile)).toEqual(['pull']);
  });

  it('never writes the bind password or a directory password into a log line', async () => {
    const everything = lines.join('');
    expect(lines.some((l) => l.includes('directory sign-in failed'))).toBe(true);
    expect(lines.some((l) => l.includes('failed login'))).toBe(true);
    for (const secret of [directory.adminPassword, 'wrong-bind-password-123', ALICE[1], BOB[1], 'not-her-password', 'carol-directory-pw']) {
      expect(everything.includes(secret) ? secret : 'absent').toBe('absent');
    }
  });
});
