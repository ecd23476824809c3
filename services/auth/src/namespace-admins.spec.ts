/**
 * Namespaces run by their owners (issue 24): what a namespace admin may do through the admin API inside its
 * namespace, and what it may not do beyond it. The scope matrix (services/embedded) walks every route for every
 * kind of caller; this spec proves the rules of the handlers themselves: filtered listings, grants and robots
 * confined to the namespace, webhooks confined to it, tag rules but not visibility, and group grants.
 */
import request from 'supertest';
import type { Express } from 'express';
import { hashPassword } from '@lading/access';
import * as meta from '@lading/metadata';
import { TestDeps, createTestDeps } from '@lading/testing';
import { createAuthService } from './auth-service';
import { startSession } from './console-sessions';

const ROOT = { user: 'root', password: 'root-password-1' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const HOOK = 'http://127.0.0.1:9/hook';

describe('namespace admins', () => {
  let deps: TestDeps;
  let app: Express;

  /** Calls the admin API as `user` (its password is `<user>-password`). */
  function as(user: string, method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: object) {
    const req = request(app)[method](`/admin/v1${path}`).set('Authorization', basic(user, `${user}-password`));
    return body === undefined ? req : req.send(body);
  }
  const root = (method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: object) => {
    const req = request(app)[method](`/admin/v1${path}`).set('Authorization', basic(ROOT.user, ROOT.password));
    return body === undefined ? req : req.send(body);
  };

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true, loginFailureLimit: 1000 }, webhooks: { allowList: ['127.0.0.1'] } });
    app = createAuthService({ db: deps.db, config: deps.config, logger: deps.logger }).app;
    await meta.createUser(deps.db, ROOT.user, await hashPassword(ROOT.password), true);
    for (const name of ['tess', 'olaf', 'pete', 'gina']) await meta.createUser(deps.db, name, await hashPassword(`${name}-password`), false);
    for (const prefix of ['team', 'team/sub', 'other']) await meta.upsertNamespace(deps.db, prefix, false);
    await meta.addGrant(deps.db, 'team', 'user', 'tess', 'admin');
    await meta.addGrant(deps.db, 'other', 'user', 'olaf', 'admin');
    await meta.addGrant(deps.db, 'team', 'user', 'pete', 'push');
    await meta.addGrant(deps.db, 'team', 'group', 'platform', 'admin');
  });
  afterAll(async () => deps.close());

  it('lets a namespace admin in with Basic credentials, and refuses a user who administers nothing', async () => {
    expect((await as('tess', 'get', '/namespaces')).status).toBe(200);
    const pete = await as('pete', 'get', '/namespaces');
    expect(pete.status).toBe(403);
    expect(pete.body.errors[0].code).toBe('DENIED');
  });

  it("lists only the namespaces it administers, those beneath them included, with their grants", async () => {
    const res = await as('tess', 'get', '/namespaces').expect(200);
    expect(res.body.namespaces.map((n: { prefix: string }) => n.prefix)).toEqual(['team', 'team/sub']);
    expect(res.body.namespaces[0].grants).toContainEqual({ principalType: 'user', principalName: 'pete', role: 'push' });
  });

  it('grants and revokes roles on its namespace, admin included, and nowhere else', async () => {
    await as('tess', 'post', '/grants', { prefix: 'team', principal: 'user:gina', role: 'admin' }).expect(201);
    await as('tess', 'post', '/grants', { prefix: 'team/sub', principal: 'user:pete', role: 'delete' }).expect(201);
    await as('tess', 'delete', '/grants', { prefix: 'team', principal: 'user:gina', role: 'admin' }).expect(204);
    const beyond = await as('tess', 'post', '/grants', { prefix: 'other', principal: 'user:tess', role: 'admin' });
    expect(beyond.status).toBe(403);
    expect(beyond.body.errors[0].code).toBe('DENIED');
    await as('tess', 'delete', '/grants', { prefix: 'other', principal: 'user:olaf', role: 'admin' }).expect(403);
    // A namespace named like the start of its own is not beneath it.
    await meta.upsertNamespace(deps.db, 'teammates', false);
    await as('tess', 'post', '/grants', { prefix: 'teammates', principal: 'user:tess', role: 'pull' }).expect(403);
    expect((await meta.findNamespace(deps.db, 'other'))!.grants).toEqual([{ principalType: 'user', principalName: 'olaf', role: 'admin' }]);
    expect((await meta.findNamespace(deps.db, 'teammates'))!.grants).toEqual([]);
  });

  it('creates, lists and revokes robots of its namespace, named <namespace>+<name>, and only those', async () => {
    const created = await as('tess', 'post', '/robots', { name: 'builder', namespace: 'team' }).expect(201);
    expect(created.body).toMatchObject({ name: 'team+builder', namespace: 'team', login: 'robot$team+builder' });
    await root('post', '/robots', { name: 'global-ci' }).expect(201);
    await as('olaf', 'post', '/robots', { name: 'deployer', namespace: 'other' }).expect(201);

    // Without a namespace a robot is global: for global admins only.
    await as('tess', 'post', '/robots', { name: 'loose' }).expect(403);
    await as('tess', 'post', '/robots', { name: 'intruder', namespace: 'other' }).expect(403);
    const listed = await as('tess', 'get', '/robots').expect(200);
    expect(listed.body.robots.map((r: { name: string }) => r.name)).toEqual(['team+builder']);
    expect((await root('get', '/robots').expect(200)).body.robots.map((r: { name: string }) => r.name)).toEqual(['global-ci', 'other+deployer', 'team+builder']);

    // The robot signs in and works where it was granted.
    const token = await request(app)
      .get('/token?service=lading&scope=repository:team/app:pull,push')
      .set('Authorization', basic('robot$team+builder', created.body.secret));
    expect(token.status).toBe(200);

    await as('tess', 'delete', '/robots/other+deployer').expect(403);
    await as('tess', 'delete', '/robots/global-ci').expect(403);
    await as('tess', 'delete', '/robots/team+builder').expect(204);
    expect((await meta.findRobot(deps.db, 'other+deployer'))!.revokedAt).toBeNull();
    expect((await meta.findRobot(deps.db, 'global-ci'))!.revokedAt).toBeNull();
  });

  it('grants a namespace robot roles within its namespace only, whoever asks', async () => {
    await as('tess', 'post', '/robots', { name: 'pusher', namespace: 'team' }).expect(201);
    await as('tess', 'post', '/grants', { prefix: 'team', principal: 'robot:team+pusher', role: 'push' }).expect(201);
    await as('tess', 'post', '/grants', { prefix: 'team/sub', principal: 'robot:team+pusher', role: 'push' }).expect(201);
    const elsewhere = await root('post', '/grants', { prefix: 'other', principal: 'robot:team+pusher', role: 'pull' });
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body.errors[0].message).toMatch(/belongs to namespace team/);
    expect((await meta.findNamespace(deps.db, 'other'))!.grants.some((g) => g.principalName === 'robot$team+pusher')).toBe(false);
  });

  it('changes the tag rules of its namespace, but not whether it is public, nor another namespace', async () => {
    const patched = await as('tess', 'patch', '/namespaces?prefix=team', { immutableTags: ['v*'] }).expect(200);
    expect(patched.body.immutableTags).toEqual(['v*']);
    await as('tess', 'patch', '/namespaces?prefix=team', { public: true }).expect(403);
    await as('tess', 'patch', '/namespaces?prefix=other', { immutableTags: ['v*'] }).expect(403);
    await as('tess', 'post', '/namespaces', { prefix: 'team/new' }).expect(403);
    await as('tess', 'delete', '/namespaces?prefix=team/sub').expect(403);
    expect((await meta.findNamespace(deps.db, 'team'))!.public).toBe(false);
    expect((await meta.findNamespace(deps.db, 'other'))!.immutableTags).toEqual([]);
  });

  it('manages webhooks whose filter is confined to its namespace, and sees only those', async () => {
    const mine = await as('tess', 'post', '/webhooks', { name: 'team hook', namespace: 'team/sub', url: HOOK }).expect(201);
    const everything = await root('post', '/webhooks', { name: 'all', url: HOOK }).expect(201);
    const theirs = await as('olaf', 'post', '/webhooks', { name: 'other hook', namespace: 'other', url: HOOK }).expect(201);
    await as('tess', 'post', '/webhooks', { name: 'spy', url: HOOK }).expect(403);
    await as('tess', 'post', '/webhooks', { name: 'spy', namespace: 'other', url: HOOK }).expect(403);

    const listed = await as('tess', 'get', '/webhooks').expect(200);
    expect(listed.body.webhooks.map((w: { id: string }) => w.id)).toEqual([mine.body.id]);
    await as('tess', 'post', `/webhooks/${mine.body.id}/ping`).expect(202);
    await as('tess', 'patch', `/webhooks/${mine.body.id}`, { namespace: 'other' }).expect(403);
    await as('tess', 'patch', `/webhooks/${mine.body.id}`, { namespace: '' }).expect(403);
    await as('tess', 'patch', `/webhooks/${mine.body.id}`, { enabled: false }).expect(200);
    for (const id of [everything.body.id, theirs.body.id]) {
      await as('tess', 'get', `/webhooks/${id}`).expect(403);
      await as('tess', 'post', `/webhooks/${id}/rotate`).expect(403);
      await as('tess', 'delete', `/webhooks/${id}`).expect(403);
    }
    await as('tess', 'delete', `/webhooks/${mine.body.id}`).expect(204);
    expect((await root('get', '/webhooks').expect(200)).body.webhooks).toHaveLength(2);
  });

  it('reads the audit of its namespace and of a repository of it, and nothing registry-wide', async () => {
    await as('tess', 'get', '/audit?repository=team/app').expect(200);
    await as('tess', 'get', '/audit?namespace=team').expect(200);
    await as('tess', 'get', '/audit?namespace=team/sub&repository=team/sub/app').expect(200);
    await as('tess', 'get', '/audit?namespace=other').expect(403);
    await as('tess', 'get', '/audit?namespace=team&repository=other/app').expect(403);
    await as('tess', 'get', '/audit?namespace=team&namespace=other').expect(403);
    await as('tess', 'get', '/audit?namespace[x]=team').expect(403);
    await as('tess', 'get', '/audit').expect(403);
    await as('tess', 'get', '/audit?repository=other/app').expect(403);
    for (const path of ['/users', '/quotas', '/usage', '/proxies', '/outbox/parked']) await as('tess', 'get', path).expect(403);
    await as('tess', 'post', '/keys/rotate').expect(403);
  });

  it('counts group grants: a console session of a member of an admin group is a namespace admin', async () => {
    const gina = (await meta.findUser(deps.db, 'gina'))!;
    const credential = { kind: 'password' as const, userId: gina.id, passwordVersion: gina.passwordVersion };
    const inGroup = await startSession({ db: deps.db, config: deps.config, now: Date.now }, { type: 'user', name: 'gina', isAdmin: false, credential, groups: ['platform'] });
    const outside = await startSession({ db: deps.db, config: deps.config, now: Date.now }, { type: 'user', name: 'gina', isAdmin: false, credential, groups: ['sales'] });
    const session = (s: string) => `lading_session=${s}`;
    const member = await request(app).get('/admin/v1/namespaces').set('Cookie', session(inGroup)).expect(200);
    expect(member.body.namespaces.map((n: { prefix: string }) => n.prefix)).toEqual(['team', 'team/sub']);
    await request(app).post('/admin/v1/grants').set('Cookie', session(inGroup)).send({ prefix: 'team', principal: 'user:pete', role: 'pull' }).expect(201);
    await request(app).post('/admin/v1/grants').set('Cookie', session(inGroup)).send({ prefix: 'other', principal: 'user:pete', role: 'pull' }).expect(403);
    await request(app).get('/admin/v1/namespaces').set('Cookie', session(outside)).expect(403);
  });

  it("answers a namespace admin's malformed requests without a 5xx, changing nothing", async () => {
    const state = async () => JSON.stringify([await meta.listNamespaces(deps.db), await meta.listRobots(deps.db)]);
    const before = await state();
    const bodies: unknown[] = [[], 'team', 42, null, { prefix: ['team'] }, { prefix: { team: true } }, { prefix: 'team\u0000' }, { namespace: 7, name: 'x' }, { prefix: 'team/../other' }];
    const targets: Array<['post' | 'delete' | 'patch', string]> = [
      ['post', '/grants'],
      ['delete', '/grants'],
      ['post', '/robots'],
      ['post', '/webhooks'],
      ['patch', '/namespaces?prefix=team'],
      ['patch', '/namespaces?prefix[]=team'],
      ['patch', '/webhooks/not-a-uuid'],
      ['delete', '/robots/%2B'],
    ];
    for (const [method, path] of targets) {
      for (const body of bodies) {
        const req = as('tess', method, path).set('Content-Type', 'application/json');
        const res = await req.send(JSON.stringify(body));
        // (A PATCH whose body names nothing it changes is a 200 that changes nothing, for any admin.)
        expect({ method, path, body, status: res.status < 500 }).toEqual({ method, path, body, status: true });
      }
    }
    expect(await state()).toBe(before);
  });
  it('tells the console which namespaces a user administers, group grants included, at sign-in and after', async () => {
    const signIn = (user: string, password: string) => request(app).post('/ui/api/session').send({ username: user, password }).expect(200);
    const tess = await signIn('tess', 'tess-password');
    expect(tess.body).toMatchObject({ user: 'tess', admin: false, adminOf: ['team'] });
    const cookie = String(tess.headers['set-cookie']).split(';')[0];
    expect((await request(app).get('/ui/api/session').set('Cookie', cookie).expect(200)).body).toMatchObject({ user: 'tess', admin: false, adminOf: ['team'] });
    expect((await signIn('pete', 'pete-password')).body).toMatchObject({ admin: false, adminOf: [] });
    // A global admin administers everything: `admin` says so, and the list stays empty.
    expect((await signIn(ROOT.user, ROOT.password)).body).toMatchObject({ admin: true, adminOf: [] });

    const gina = (await meta.findUser(deps.db, 'gina'))!;
    const credential = { kind: 'password' as const, userId: gina.id, passwordVersion: gina.passwordVersion };
    const inGroup = await startSession({ db: deps.db, config: deps.config, now: Date.now }, { type: 'user', name: 'gina', isAdmin: false, credential, groups: ['platform'] });
    expect((await request(app).get('/ui/api/session').set('Cookie', `lading_session=${inGroup}`).expect(200)).body).toMatchObject({ user: 'gina', adminOf: ['team'] });
    // Nobody signed in administers nothing.
    expect((await request(app).get('/ui/api/session').expect(200)).body).toMatchObject({ user: null, admin: false, adminOf: [] });
  });
});
