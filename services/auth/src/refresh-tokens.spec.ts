import request from 'supertest';
import type { Express } from 'express';
import { hashPassword } from '@lading/access';
import * as meta from '@lading/metadata';
import { TestDeps, createTestDeps } from '@lading/testing';
import { createAuthService } from './auth-service';

const ROOT = { user: 'root', password: 'root-password-1' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Refresh tokens: bound to the credential that minted them, and rotated on every use. */
describe('refresh tokens', () => {
  let deps: TestDeps;
  let app: Express;
  let adminPat: string;

  function admin(method: 'post' | 'put' | 'delete', path: string, body?: unknown) {
    const req = request(app)[method](`/admin/v1${path}`).set('Authorization', basic(ROOT.user, adminPat));
    return body === undefined ? req : req.send(body as object);
  }

  /** A refresh token from the password grant with access_type=offline. */
  async function offline(username: string, password: string): Promise<string> {
    const res = await request(app).post('/token').type('form').send({ grant_type: 'password', username, password, access_type: 'offline', service: 'lading' });
    expect(res.status).toBe(200);
    expect(res.body.refresh_token).toMatch(/^lrt_/);
    return res.body.refresh_token;
  }

  function refresh(token: string) {
    return request(app).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: token, service: 'lading' });
  }

  async function expectDead(token: string): Promise<void> {
    const res = await refresh(token);
    expect(res.status).toBe(401);
    expect(res.body.errors[0]).toMatchObject({ code: 'UNAUTHORIZED', message: 'invalid refresh token' });
    expect(res.body.token).toBeUndefined();
  }

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true, loginFailureLimit: 1000, loginAddressLimit: 1000, loginAccountLimit: 1000 } });
    app = createAuthService({ db: deps.db, config: deps.config, logger: deps.logger }).app;
    await meta.createUser(deps.db, ROOT.user, await hashPassword(ROOT.password), true);
    const pat = await request(app).post(`/admin/v1/users/${ROOT.user}/tokens`).set('Authorization', basic(ROOT.user, ROOT.password)).send({ name: 'cli' });
    adminPat = pat.body.token;
  });
  afterAll(async () => deps.close());

  it('rotates on use: each refresh answers with the next token and retires the one it was given', async () => {
    await admin('post', '/users', { name: 'una', password: 'una-password' }).expect(201);
    const first = await offline('una', 'una-password');
    const second = await refresh(first);
    expect(second.status).toBe(200);
    expect(second.body.refresh_token).toMatch(/^lrt_/);
    expect(second.body.refresh_token).not.toBe(first);
    const third = await refresh(second.body.refresh_token);
    expect(third.status).toBe(200);
    expect(third.body.refresh_token).not.toBe(second.body.refresh_token);
  });

  it('revokes the whole family when a retired token is replayed (a stolen copy): the thief and the owner log in again', async () => {
    await admin('post', '/users', { name: 'vic', password: 'vic-password' }).expect(201);
    const stolen = await offline('vic', 'vic-password');
    const ownersNext = (await refresh(stolen).expect(200)).body.refresh_token as string;
    // The thief replays the copy it took before the owner used it.
    await expectDead(stolen);
    // The owner's newer token went with the family.
    await expectDead(ownersNext);
    // Another family of the same user (another device) is untouched.
    const other = await offline('vic', 'vic-password');
    expect((await refresh(other)).status).toBe(200);
  });

  it('dies when the password that minted it changes (and only the ones that password minted)', async () => {
    await admin('post', '/users', { name: 'wes', password: 'wes-password' }).expect(201);
    const byPassword = await offline('wes', 'wes-password');
    const pat = (await admin('post', '/users/wes/tokens', { name: 'ci' }).expect(201)).body.token as string;
    const byPat = await offline('wes', pat);
    await admin('put', '/users/wes/password', { password: 'wes-password-2' }).expect(204);
    await expectDead(byPassword);
    // The access token is a credential of its own: a password change does not end what it minted.
    expect((await refresh(byPat)).status).toBe(200);
    // The new password mints tokens that work.
    expect((await refresh(await offline('wes', 'wes-password-2'))).status).toBe(200);
  });

  it('dies when the personal access token that minted it is revoked, or expires', async () => {
    await admin('post', '/users', { name: 'xia', password: 'xia-password' }).expect(201);
    const revoked = (await admin('post', '/users/xia/tokens', { name: 'laptop' }).expect(201)).body.token as string;
    const expiring = (await admin('post', '/users/xia/tokens', { name: 'brief', expiresIn: '1h' }).expect(201)).body.token as string;
    const byRevoked = await offline('xia', revoked);
    const byExpiring = await offline('xia', expiring);
    const byPassword = await offline('xia', 'xia-password');
    await admin('delete', '/users/xia/tokens/laptop').expect(204);
    await expectDead(byRevoked);
    await deps.db.query(`UPDATE access_tokens SET expires_at = now() - interval '1 second' WHERE name = 'brief'`);
    await expectDead(byExpiring);
    expect((await refresh(byPassword)).status).toBe(200);
  });

  it('dies when its user is disabled, and stays dead when the user is enabled again', async () => {
    await admin('post', '/users', { name: 'yan', password: 'yan-password' }).expect(201);
    const pat = (await admin('post', '/users/yan/tokens', { name: 'ci' }).expect(201)).body.token as string;
    const byPassword = await offline('yan', 'yan-password');
    const byPat = await offline('yan', pat);
    await admin('post', '/users/yan/disable').expect(204);
    await admin('post', '/users/yan/enable').expect(204);
    await expectDead(byPassword);
    await expectDead(byPat);
  });

  it('dies when its user is deleted, even if a new user of the same name comes later', async () => {
    await admin('post', '/users', { name: 'zed', password: 'zed-password' }).expect(201);
    const token = await offline('zed', 'zed-password');
    await admin('delete', '/users/zed').expect(204);
    await admin('post', '/users', { name: 'zed', password: 'zed-password' }).expect(201);
    await expectDead(token);
  });

  it('dies when its robot is deleted or expires', async () => {
    const deleted = (await admin('post', '/robots', { name: 'builder' }).expect(201)).body.secret as string;
    const expiring = (await admin('post', '/robots', { name: 'nightly', expiresIn: '1h' }).expect(201)).body.secret as string;
    const byDeleted = await offline('robot$builder', deleted);
    const byExpiring = await offline('robot$nightly', expiring);
    const next = await refresh(byDeleted);
    expect(next.status).toBe(200);
    await admin('delete', '/robots/builder').expect(204);
    await expectDead(next.body.refresh_token);
    await deps.db.query(`UPDATE robots SET expires_at = now() - interval '1 second' WHERE name = 'nightly'`);
    await expectDead(byExpiring);
  });

  it("keeps Docker's identity token (GET offline_token=true) as it is, since the daemon presents it unchanged, until its credential dies", async () => {
    await admin('post', '/users', { name: 'dock', password: 'dock-password' }).expect(201);
    const login = await request(app).get('/token?service=lading&offline_token=true&client_id=docker').set('Authorization', basic('dock', 'dock-password')).expect(200);
    const identity = login.body.refresh_token as string;
    expect(identity).toMatch(/^lrt_/);
    // Every later docker command presents the identity token from config.json: each must work, and get it back.
    for (let i = 0; i < 3; i++) {
      const res = await refresh(identity);
      expect(res.status).toBe(200);
      expect(res.body.refresh_token).toBe(identity);
    }
    await admin('put', '/users/dock/password', { password: 'dock-password-2' }).expect(204);
    await expectDead(identity);
  });

  it('is not burnt by a request for another service', async () => {
    await admin('post', '/users', { name: 'ada', password: 'ada-password' }).expect(201);
    const token = await offline('ada', 'ada-password');
    const wrong = await request(app).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: token, service: 'other' });
    expect(wrong.status).toBe(401);
    expect((await refresh(token)).status).toBe(200);
  });

  it('ends every refresh token issued before the binding existed (they name no credential)', async () => {
    await deps.db.query(
      `INSERT INTO refresh_tokens (token_hash, principal_type, principal_name, expires_at) VALUES (encode(sha256('lrt_legacy'::bytea), 'hex'), 'user', 'root', now() + interval '1 hour')`,
    );
    await expectDead('lrt_legacy');
  });
});
