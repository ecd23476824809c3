import { Writable } from 'node:stream';
import request from 'supertest';
import type { Express } from 'express';
import { hashPassword } from '@lading/access';
import { parseConfig } from '@lading/config';
import * as meta from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { TestDeps, createTestDeps, OpenIdProvider, startOpenIdProvider } from '@lading/testing';
import { createAuthService } from './auth-service';

const HOST = 'http://lading.test';
const REDIRECT = `${HOST}/ui/api/oidc/callback`;

/** The value of one cookie among a response's Set-Cookie headers ('' when it is being cleared), or undefined. */
function setCookie(res: request.Response, name: string): string | undefined {
  const lines = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  const line = lines.find((l) => l.startsWith(`${name}=`) && !l.includes('Max-Age=0'));
  return line?.slice(name.length + 1).split(';')[0];
}

describe('OpenID Connect sign-in to the console (code + PKCE, against a real oidc-provider)', () => {
  let deps: TestDeps;
  let op: OpenIdProvider;
  let app: Express;
  const logLines: string[] = [];

  /** Builds the auth service against the provider with `oidc` settings beyond the issuer and client. */
  function build(oidc: Record<string, unknown> = {}): Express {
    const config = parseConfig({
      ...deps.config,
      http: { ...deps.config.http, host: HOST },
      auth: { ...deps.config.auth, enabled: true, oidc: { issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret, scopes: ['openid', 'profile', 'email', 'groups'], ...oidc } },
    } as never);
    const destination = new Writable({ write: (chunk: Buffer, _enc, done) => done(void logLines.push(chunk.toString('utf8'))) });
    const logger = createLogger({ service: 'test', level: 'debug', destination });
    return createAuthService({ db: deps.db, config, logger, oidcTransport: { jwksCooldownMs: 0 } }).app;
  }

  /** Starts a sign-in: the redirect to the provider and the state cookie. */
  async function startSignIn(on: Express = app) {
    const res = await request(on).get('/ui/api/oidc/login').expect(302);
    return { location: res.headers.location as string, stateCookie: setCookie(res, 'lading_oidc')! };
  }

  /** A whole sign-in as `subject`: the callback's answer. */
  async function signIn(subject: string, on: Express = app) {
    const { location, stateCookie } = await startSignIn(on);
    const back = await op.authorize(location, subject);
    return request(on).get(back.pathname + back.search).set('Cookie', `lading_oidc=${stateCookie}`);
  }

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true } });
    op = await startOpenIdProvider(REDIRECT);
    op.accounts.set('sub-alice', { preferred_username: 'alice', email: 'alice@corp.example', email_verified: true, groups: ['devs', 'ops'] });
    op.accounts.set('sub-bob-impostor', { preferred_username: 'bob', email: 'bob@corp.example', email_verified: true, groups: ['devs'] });
    op.accounts.set('sub-mallory', { preferred_username: 'mallory', email: 'mallory@corp.example', email_verified: true, groups: ['contractors'] });
    op.accounts.set('sub-eve', { preferred_username: 'eve', email: 'eve@elsewhere.example', email_verified: true, groups: ['devs'] });
    await meta.createUser(deps.db, 'bob', await hashPassword('bob-password'), false);
    app = build();
  });
  afterAll(async () => {
    await op.close();
    await deps.close();
  });

  it('tells the console that company sign-in is offered', async () => {
    const res = await request(app).get('/ui/api/session').expect(200);
    expect(res.body).toMatchObject({ user: null, auth: true, oidc: true });
  });

  it('redirects to the provider with state, nonce and an S256 PKCE challenge, and keeps the state in an HttpOnly cookie', async () => {
    const res = await request(app).get('/ui/api/oidc/login').expect(302);
    const url = new URL(res.headers.location);
    expect(url.origin).toBe(op.issuer);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ response_type: 'code', client_id: op.clientId, redirect_uri: REDIRECT, code_challenge_method: 'S256' });
    expect(url.searchParams.get('state')).toMatch(/^[\w-]{43}$/);
    expect(url.searchParams.get('nonce')).toMatch(/^[\w-]{43}$/);
    expect(url.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    const cookie = ([] as string[]).concat(res.headers['set-cookie']).find((l) => l.startsWith('lading_oidc='))!;
    expect(cookie).toContain(`lading_oidc=${url.searchParams.get('state')}`);
    expect(cookie).toMatch(/HttpOnly; SameSite=Lax/);
  });

  it('signs a new user in just in time, starts a console session carrying the groups, and redirects to /ui/', async () => {
    const res = await signIn('sub-alice');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/ui/');
    const session = setCookie(res, 'lading_session')!;
    expect(session).toMatch(/^lses_/);
    const me = await request(app).get('/ui/api/session').set('Cookie', `lading_session=${session}`).expect(200);
    expect(me.body).toMatchObject({ user: 'alice', admin: false, csrf: expect.any(String) });
    const stored = await deps.db.query<{ groups: unknown; credential: string }>(`SELECT groups, credential FROM refresh_tokens WHERE principal_name = 'alice'`);
    expect(stored.rows.map((r) => [typeof r.groups === 'string' ? JSON.parse(r.groups) : r.groups, r.credential])).toContainEqual([['devs', 'ops'], 'oidc']);
    const link = await deps.db.query<{ subject: string }>(`SELECT subject FROM oidc_identities i JOIN users u ON u.id = i.user_id WHERE u.name = 'alice'`);
    expect(link.rows).toEqual([{ subject: 'sub-alice' }]);
  });

  it('offers a session signed in through the provider its logout (RP-initiated), back to the console; never a password session', async () => {
    const session = setCookie(await signIn('sub-alice'), 'lading_session')!;
    const me = await request(app).get('/ui/api/session').set('Cookie', `lading_session=${session}`).expect(200);
    expect(me.body.logoutUrl).toBe(`${op.issuer}/session/end?client_id=${op.clientId}&post_logout_redirect_uri=${encodeURIComponent(`${HOST}/ui/`)}`);
    expect((await fetch(me.body.logoutUrl)).status).toBe(200);
    await request(app).delete('/ui/api/session').set('Cookie', `lading_session=${session}`).expect(204);
    const bob = await request(app).post('/ui/api/session').send({ username: 'bob', password: 'bob-password' }).expect(200);
    const asBob = await request(app).get('/ui/api/session').set('Cookie', `lading_session=${setCookie(bob, 'lading_session')}`).expect(200);
    expect(asBob.body).toMatchObject({ user: 'bob', oidc: true });
    expect(asBob.body.logoutUrl).toBeUndefined();
  });

  it('refreshes: the session mints bearer tokens through the refresh_token grant, as distributed gateways use it', async () => {
    const session = setCookie(await signIn('sub-alice'), 'lading_session')!;
    const token = await request(app).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: session, service: 'lading' }).expect(200);
    expect(token.body.refresh_token).toBe(session);
    const claims = JSON.parse(Buffer.from(token.body.token.split('.')[1], 'base64url').toString('utf8'));
    expect(claims.sub).toBe('alice');
  });

  it('links a returning user by sub: a changed e-mail and username at the provider keep the same user', async () => {
    op.accounts.set('sub-alice', { preferred_username: 'alice.renamed', email: 'alice@new-corp.example', email_verified: true, groups: ['devs'] });
    try {
      const res = await signIn('sub-alice');
      expect(res.status).toBe(302);
      const me = await request(app).get('/ui/api/session').set('Cookie', `lading_session=${setCookie(res, 'lading_session')}`).expect(200);
      expect(me.body.user).toBe('alice');
      const users = await deps.db.query(`SELECT name FROM users WHERE name LIKE 'alice%'`);
      expect(users.rows).toEqual([{ name: 'alice' }]);
    } finally {
      op.accounts.set('sub-alice', { preferred_username: 'alice', email: 'alice@corp.example', email_verified: true, groups: ['devs', 'ops'] });
    }
  });

  it('refuses a first sign-in whose username belongs to an existing local user (never merged by name or e-mail)', async () => {
    const res = await signIn('sub-bob-impostor');
    expect(res.status).toBe(409);
    expect(res.body.errors[0]).toMatchObject({ code: 'DENIED', message: expect.stringContaining('belongs to another account') });
    expect(setCookie(res, 'lading_session')).toBeUndefined();
    expect((await deps.db.query(`SELECT 1 FROM oidc_identities WHERE subject = 'sub-bob-impostor'`)).rows).toHaveLength(0);
  });

  it('refuses a replayed callback: the state is spent by its first use', async () => {
    const { location, stateCookie } = await startSignIn();
    const back = await op.authorize(location, 'sub-alice');
    await request(app).get(back.pathname + back.search).set('Cookie', `lading_oidc=${stateCookie}`).expect(302);
    const again = await request(app).get(back.pathname + back.search).set('Cookie', `lading_oidc=${stateCookie}`).expect(401);
    expect(again.body.errors[0].message).toContain('unknown, already finished or expired');
  });

  it('refuses a callback whose state is not the one in this browser\'s cookie (login CSRF)', async () => {
    const mine = await startSignIn();
    const theirs = await startSignIn();
    const back = await op.authorize(theirs.location, 'sub-alice');
    const res = await request(app).get(back.pathname + back.search).set('Cookie', `lading_oidc=${mine.stateCookie}`).expect(401);
    expect(res.body.errors[0].message).toContain('state does not match');
    const none = await request(app).get(back.pathname + back.search).expect(401);
    expect(none.body.errors[0].code).toBe('UNAUTHORIZED');
  });

  it('refuses an ID token whose nonce is not the sign-in\'s', async () => {
    const { location, stateCookie } = await startSignIn();
    const tampered = new URL(location);
    tampered.searchParams.set('nonce', 'a-nonce-of-another-sign-in');
    const back = await op.authorize(tampered.toString(), 'sub-alice');
    const res = await request(app).get(back.pathname + back.search).set('Cookie', `lading_oidc=${stateCookie}`).expect(401);
    expect(res.body.errors[0].message).toContain('nonce');
  });

  it('refuses an authorization code redeemed without the PKCE verifier it was issued for', async () => {
    const { location, stateCookie } = await startSignIn();
    const tampered = new URL(location);
    tampered.searchParams.set('code_challenge', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
    const back = await op.authorize(tampered.toString(), 'sub-alice');
    const res = await request(app).get(back.pathname + back.search).set('Cookie', `lading_oidc=${stateCookie}`).expect(401);
    expect(res.body.errors[0].message).toContain('refused the authorization code (invalid_grant)');
  });

  it('verifies ID tokens signed after the provider rotated its keys (the JWKS is fetched again)', async () => {
    expect((await signIn('sub-alice')).status).toBe(302);
    const before = op.kids();
    await op.rotateKeys();
    expect(op.kids()[0]).not.toBe(before[0]);
    const res = await signIn('sub-alice');
    expect(res.status).toBe(302);
    expect(setCookie(res, 'lading_session')).toMatch(/^lses_/);
  });

  it('refuses a user in none of allowedGroups, and one outside allowedDomains, with 403 and no session', async () => {
    const restricted = build({ allowedGroups: ['devs'], allowedDomains: ['corp.example'] });
    const mallory = await signIn('sub-mallory', restricted);
    expect(mallory.status).toBe(403);
    expect(mallory.body.errors[0].message).toContain('none of the groups');
    const eve = await signIn('sub-eve', restricted);
    expect(eve.status).toBe(403);
    expect(eve.body.errors[0].message).toContain('elsewhere.example');
    expect((await deps.db.query(`SELECT 1 FROM users WHERE name IN ('mallory', 'eve')`)).rows).toHaveLength(0);
    expect((await signIn('sub-alice', restricted)).status).toBe(302);
  });

  it("sends a refused person's browser back to the console's sign-in page with the reason; API clients keep the JSON", async () => {
    const restricted = build({ allowedGroups: ['devs'] });
    const { location, stateCookie } = await startSignIn(restricted);
    const back = await op.authorize(location, 'sub-mallory');
    const res = await request(restricted).get(back.pathname + back.search).set('Cookie', `lading_oidc=${stateCookie}`).set('Accept', 'text/html,application/xhtml+xml');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/ui/sign-in?refused=not-allowed');
    expect(setCookie(res, 'lading_session')).toBeUndefined();
    // The same callback again (its state spent) is a failed sign-in, worded as such.
    const again = await request(restricted).get(back.pathname + back.search).set('Cookie', `lading_oidc=${stateCookie}`).set('Accept', 'text/html');
    expect(again.headers.location).toBe('/ui/sign-in?refused=failed');
    const json = await request(restricted).get(back.pathname + back.search).set('Cookie', `lading_oidc=${stateCookie}`);
    expect(json.status).toBe(401);
    expect(json.body.errors[0]).toMatchObject({ code: 'UNAUTHORIZED', detail: { reason: 'failed' } });
  });

  it('refuses a provider whose discovery document names another issuer', async () => {
    const wrong = build({ issuer: `${op.issuer}/` });
    const res = await request(wrong).get('/ui/api/oidc/login');
    expect(res.status).toBe(503);
    expect(res.body.errors[0].code).toBe('UNAVAILABLE');
  });

  it('answers a callback without code or state with 400 and changes nothing', async () => {
    const res = await request(app).get('/ui/api/oidc/callback?state=x').expect(400);
    expect(res.body.errors[0].code).toBe('UNSUPPORTED');
  });

  it('never writes the client secret, the code or a session to the log', () => {
    const all = logLines.join('\n');
    expect(all).toContain('signed in through the OpenID Provider');
    expect(all).not.toContain(op.clientSecret);
    expect(all).not.toMatch(/lses_[\w-]{10}/);
  });
});
