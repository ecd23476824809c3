import request from 'supertest';
import type { Express } from 'express';
import { keysFromJwks, verifyToken } from '@lading/access';
import { parseConfig } from '@lading/config';
import { TestDeps, createTestDeps, LoopbackIssuer, startLoopbackIssuer } from '@lading/testing';
import { createAuthService } from './auth-service';
import { claimMatches } from './workload-identity';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
const AUDIENCE = 'https://registry.example';
const GITHUB_MAIN = { repository: 'org/app', ref: 'refs/heads/main', sub: 'repo:org/app:ref:refs/heads/main' };

describe('workload identity: CI ID tokens exchanged at /token for short-lived registry tokens (RFC 8693)', () => {
  let deps: TestDeps;
  let ci: LoopbackIssuer;
  let other: LoopbackIssuer;
  let app: Express;

  function exchange(subjectToken: string, scope: string | string[] = 'repository:team/app:pull,push') {
    return request(app).post('/token').type('form').send({ grant_type: EXCHANGE, subject_token: subjectToken, subject_token_type: ID_TOKEN, scope, service: 'lading' });
  }

  beforeAll(async () => {
    deps = await createTestDeps();
    ci = await startLoopbackIssuer();
    other = await startLoopbackIssuer();
    const config = parseConfig({
      ...deps.config,
      auth: {
        ...deps.config.auth,
        enabled: true,
        workloadIdentity: [
          { name: 'app-main', issuer: ci.issuer, audience: AUDIENCE, claims: { repository: 'org/app', ref: 'refs/heads/main' }, grants: [{ namespace: 'team', role: 'push' }], tokenTtl: '2m' },
          { name: 'app-tags', issuer: ci.issuer, audience: AUDIENCE, claims: { repository: 'org/app', ref: 'refs/tags/v*' }, grants: [{ namespace: 'team/app', role: 'pull' }] },
        ],
      },
    } as never);
    app = createAuthService({ db: deps.db, config, logger: deps.logger, oidcTransport: { jwksCooldownMs: 0 } }).app;
  });
  afterAll(async () => {
    await ci.close();
    await other.close();
    await deps.close();
  });

  it('answers a matching token with a registry token for wi$<rule>, holding what was asked and the rule grants, for the rule\'s tokenTtl', async () => {
    const res = await exchange(await ci.sign({ ...GITHUB_MAIN, aud: AUDIENCE }), ['repository:team/app:pull,push,delete', 'repository:secret/x:pull']).expect(200);
    expect(res.body).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 120 });
    const jwks = await request(app).get('/.well-known/jwks.json').expect(200);
    const claims = verifyToken(res.body.access_token, keysFromJwks(jwks.body), { issuer: 'lading-auth', audience: 'lading', leewaySeconds: 0, now: Date.now });
    expect(claims.sub).toBe('wi$app-main');
    expect(claims.access).toEqual([
      { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'secret/x', actions: [] },
    ]);
  });

  it('matches claims by glob: a tag build gets the tag rule\'s pull only', async () => {
    const res = await exchange(await ci.sign({ repository: 'org/app', ref: 'refs/tags/v1.2.0', sub: 'x', aud: AUDIENCE })).expect(200);
    const claims = JSON.parse(Buffer.from(res.body.token.split('.')[1], 'base64url').toString('utf8'));
    expect(claims.sub).toBe('wi$app-tags');
    expect(claims.access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
  });

  it('refuses a token whose claims match no rule (another branch)', async () => {
    const res = await exchange(await ci.sign({ ...GITHUB_MAIN, ref: 'refs/heads/feature', aud: AUDIENCE })).expect(401);
    expect(res.body.errors[0]).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringContaining('ref claim does not match') });
  });

  it('refuses a token for another audience', async () => {
    const res = await exchange(await ci.sign({ ...GITHUB_MAIN, aud: 'https://another.example' })).expect(401);
    expect(res.body.errors[0].message).toContain('another audience');
  });

  it('refuses a token from an issuer no rule trusts', async () => {
    const res = await exchange(await other.sign({ ...GITHUB_MAIN, aud: AUDIENCE })).expect(401);
    expect(res.body.errors[0].message).toContain('no workload identity rule trusts the issuer');
  });

  it('refuses a token that claims the trusted issuer but is signed by a key it does not publish', async () => {
    const res = await exchange(await ci.sign({ ...GITHUB_MAIN, aud: AUDIENCE }, { forged: true })).expect(401);
    expect(res.body.errors[0].message).toContain('key the issuer does not publish');
  });

  it('refuses an expired token', async () => {
    const past = Math.floor(Date.now() / 1000) - 3600;
    const res = await exchange(await ci.sign({ ...GITHUB_MAIN, aud: AUDIENCE, iat: past - 300, exp: past })).expect(401);
    expect(res.body.errors[0].message).toContain('expired');
  });

  it('refuses a replayed token: each jti is exchanged once within its lifetime', async () => {
    const token = await ci.sign({ ...GITHUB_MAIN, aud: AUDIENCE });
    await exchange(token).expect(200);
    const again = await exchange(token).expect(401);
    expect(again.body.errors[0].message).toContain('already been exchanged');
  });

  it('accepts tokens signed after the issuer rotated its key (its JWKS is fetched again)', async () => {
    await exchange(await ci.sign({ ...GITHUB_MAIN, aud: AUDIENCE })).expect(200);
    await ci.rotateKeys();
    await exchange(await ci.sign({ ...GITHUB_MAIN, aud: AUDIENCE })).expect(200);
  });

  it('answers a request without a subject token, or of another token type, with 400', async () => {
    const none = await request(app).post('/token').type('form').send({ grant_type: EXCHANGE, subject_token_type: ID_TOKEN }).expect(400);
    expect(none.body.errors[0].message).toContain('subject_token is required');
    const saml = await request(app).post('/token').type('form').send({ grant_type: EXCHANGE, subject_token: 'x', subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }).expect(400);
    expect(saml.body.errors[0].message).toContain('subject_token_type');
    await exchange('not-a-jwt').expect(401);
  });

  it('matches a glob only as a whole, with no other pattern characters', () => {
    expect(claimMatches('refs/heads/main', 'refs/heads/*')).toBe(true);
    expect(claimMatches('xrefs/heads/main', 'refs/heads/*')).toBe(false);
    expect(claimMatches('org/app', 'org/a.p')).toBe(false);
    expect(claimMatches(7, '7')).toBe(false);
  });
});
