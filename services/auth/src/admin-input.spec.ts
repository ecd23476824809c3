/**
 * The admin API's input parsing: values that cannot be stored (U+0000, escapes that do not decode, expiries past
 * any date) are refused with a 400 in the OCI envelope before any query, and change nothing.
 */
import request from 'supertest';
import type { Express } from 'express';
import { hashPassword } from '@lading/access';
import * as meta from '@lading/metadata';
import { TestDeps, createTestDeps, snapshotState } from '@lading/testing';
import { createAuthService } from './auth-service';

const ROOT = { user: 'root', password: 'root-password-1' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('admin API input', () => {
  let deps: TestDeps;
  let app: Express;
  let pat: string;

  function admin(method: 'get' | 'post' | 'put' | 'delete', path: string, body?: unknown) {
    const req = request(app)[method](`/admin/v1${path}`).set('Authorization', basic(ROOT.user, pat));
    return body === undefined ? req : req.send(body as object);
  }

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true, loginFailureLimit: 1000 } });
    app = createAuthService({ db: deps.db, config: deps.config, logger: deps.logger }).app;
    await meta.createUser(deps.db, ROOT.user, await hashPassword(ROOT.password), true);
    const created = await request(app).post(`/admin/v1/users/${ROOT.user}/tokens`).set('Authorization', basic(ROOT.user, ROOT.password)).send({ name: 'cli' });
    expect(created.status).toBe(201);
    pat = created.body.token;
    await admin('post', '/namespaces', { prefix: 'team' }).expect(201);
  });

  afterAll(async () => {
    await deps?.close();
  });

  /** Sends a request that must be refused with 400 and change nothing the database holds. */
  async function expectRefused(send: () => request.Test): Promise<request.Response> {
    const before = await snapshotState(deps.db, deps.storageRoot);
    const res = await send();
    expect(`${res.status} ${res.text.slice(0, 200)}`).toMatch(/^400 /);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.errors[0].code).toBe('UNSUPPORTED');
    expect(await snapshotState(deps.db, deps.storageRoot)).toEqual(before);
    return res;
  }

  it.each<[string, unknown]>([
    ['a duration past any date', '99999999999999999999h'],
    ['a duration of 400 digits', `${'9'.repeat(400)}ms`],
    ['more than ten years', '87601h'],
    ['zero', '0s'],
    ['a negative duration', '-5m'],
    ['a fractional duration', '1.5h'],
    ['1e308 as a string', '1e308'],
    ['1e308 as a number', 1e308],
    ['a negative number', -1],
    ['a fractional number', 1.5],
  ])('refuses a robot or token expiresIn of %s with 400', async (_what, expiresIn) => {
    const res = await expectRefused(() => admin('post', '/robots', { name: 'r1', expiresIn }));
    expect(res.body.errors[0].message).toMatch(/expiresIn/);
    await expectRefused(() => admin('post', `/users/${ROOT.user}/tokens`, { name: 't1', expiresIn }));
  });

  it('accepts an expiresIn of ten years exactly', async () => {
    expect((await admin('post', '/robots', { name: 'decade', expiresIn: '87600h' })).status).toBe(201);
  });

  it.each([
    ['GET', '/users/%00/tokens'],
    ['GET', '/users/%FF/tokens'],
    ['PUT', '/users/a%00b/password'],
    ['POST', '/users/%FF/disable'],
    ['DELETE', `/users/${ROOT.user}/tokens/%00`],
    ['DELETE', '/robots/%ED%A0%80'],
    ['DELETE', '/namespaces?prefix=%00'],
    ['DELETE', '/namespaces?prefix=%FF'],
    ['DELETE', '/namespaces?prefix=team&x=%E0%A4'],
    ['GET', '/webhooks/%00'],
    ['GET', '/outbox/%FF'],
  ])('refuses %s %s (U+0000 or an escape that is not UTF-8) with 400', async (method, path) => {
    await expectRefused(() => admin(method.toLowerCase() as 'get', path, method === 'PUT' ? { password: 'long-enough-1' } : undefined));
  });

  it.each<[string, string, Record<string, unknown>]>([
    ['a user whose password holds U+0000', '/users', { name: 'nul', password: 'pass\u0000word' }],
    ['a namespace prefix with a lone surrogate', '/namespaces', { prefix: 'team\ud800' }],
    ['a grant whose unused field holds U+0000', '/grants', { prefix: 'team', principal: 'user:root', role: 'pull', note: '\u0000' }],
    ['a webhook whose URL holds U+0000', '/webhooks', { url: 'https://hooks.example/\u0000', events: ['*'] }],
  ])('refuses %s in a JSON body with 400', async (_what, path, body) => {
    const res = await expectRefused(() => admin('post', path, body));
    expect(res.body.errors[0].message).toMatch(/U\+0000 or unpaired/);
  });
});

describe('admin API grants to groups', () => {
  let deps: TestDeps;
  let app: Express;
  let pat: string;

  function admin(method: 'get' | 'post' | 'delete', path: string, body?: unknown) {
    const req = request(app)[method](`/admin/v1${path}`).set('Authorization', basic(ROOT.user, pat));
    return body === undefined ? req : req.send(body as object);
  }

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true, loginFailureLimit: 1000 } });
    app = createAuthService({ db: deps.db, config: deps.config, logger: deps.logger }).app;
    await meta.createUser(deps.db, ROOT.user, await hashPassword(ROOT.password), true);
    pat = (await request(app).post(`/admin/v1/users/${ROOT.user}/tokens`).set('Authorization', basic(ROOT.user, ROOT.password)).send({ name: 'cli' })).body.token;
    await admin('post', '/namespaces', { prefix: 'plat' }).expect(201);
  });
  afterAll(async () => {
    await deps?.close();
  });

  it('grants a role to group:<name> (a name as the directory spells it), lists it, and removes it', async () => {
    const created = await admin('post', '/grants', { prefix: 'plat', principal: 'group:Platform Team', role: 'pull' }).expect(201);
    expect(created.body).toEqual({ prefix: 'plat', principal: 'group:Platform Team', role: 'pull' });
    const listed = await admin('get', '/namespaces').expect(200);
    expect(listed.body.namespaces[0].grants).toEqual([{ principalType: 'group', principalName: 'Platform Team', role: 'pull' }]);
    await admin('delete', '/grants', { prefix: 'plat', principal: 'group:Platform Team', role: 'pull' }).expect(204);
    await admin('delete', '/grants', { prefix: 'plat', principal: 'group:Platform Team', role: 'pull' }).expect(404);
  });

  it.each(['group:', 'group: leading-space', 'group:a\nb', 'group:a,b', `group:${'g'.repeat(129)}`, 'team:platform'])('refuses the principal %j with 400 and changes nothing', async (principal) => {
    const before = await snapshotState(deps.db, deps.storageRoot);
    const res = await admin('post', '/grants', { prefix: 'plat', principal, role: 'pull' });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].code).toBe('UNSUPPORTED');
    expect(await snapshotState(deps.db, deps.storageRoot)).toEqual(before);
  });
});
