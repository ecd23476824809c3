import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '@lading/config';
import { createAuthService } from '@lading/auth';
import * as meta from '@lading/metadata';
import { OpenIdProvider, TestDeps, createTestDeps, startOpenIdProvider } from '@lading/testing';
import { DeviceLoginError, deviceLogin } from './device-login';

describe('lading-admin login: the device authorization grant (RFC 8628) against a real oidc-provider', () => {
  let deps: TestDeps;
  let op: OpenIdProvider;
  let server: http.Server;
  let registry: string;
  let config: ReturnType<typeof parseConfig>;

  beforeAll(async () => {
    deps = await createTestDeps();
    op = await startOpenIdProvider('http://lading.test/ui/api/oidc/callback');
    op.accounts.set('sub-dana', { preferred_username: 'dana', email: 'dana@corp.example', email_verified: true, groups: ['devs'] });
    // Another person for the replay test: a provider signs the same claims in the same second into the same ID token.
    op.accounts.set('sub-lee', { preferred_username: 'lee', email: 'lee@corp.example', email_verified: true, groups: ['devs'] });
    // Another for the groups test, for the same reason.
    op.accounts.set('sub-kim', { preferred_username: 'kim', email: 'kim@corp.example', email_verified: true, groups: ['devs'] });
    op.accounts.set('sub-ana', { preferred_username: 'ana', email: 'ana@corp.example', email_verified: true, groups: ['devs'] });
    op.accounts.set('sub-rot', { preferred_username: 'rot', email: 'rot@corp.example', email_verified: true, groups: ['devs'] });
    op.accounts.set('sub-old', { preferred_username: 'old', email: 'old@corp.example', email_verified: true, groups: ['devs'] });
    op.accounts.set('sub-zed', { preferred_username: 'zed', email: 'zed@corp.example', email_verified: true, groups: ['contractors'] });
    config = parseConfig({
      ...deps.config,
      http: { ...deps.config.http, host: 'http://lading.test' },
      auth: { ...deps.config.auth, enabled: true, oidc: { issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret, cliClientId: op.cliClientId, scopes: ['openid', 'profile', 'email', 'groups'], allowedGroups: ['devs'] } },
    } as never);
    // No cool-down between JWKS fetches, so that the rotation test sees the provider's new key at once.
    const { app } = createAuthService({ db: deps.db, config, logger: deps.logger, oidcTransport: { jwksCooldownMs: 0 } });
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await op.close();
    await deps.close();
  });

  /** Asks /token to exchange an ID token for a personal access token, as the CLI does. */
  const exchange = (token: string) =>
    fetch(`${registry}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token', requested_token_type: 'urn:lading:params:oauth:token-type:personal-access-token' }),
    });

  /** Runs the CLI's login while a person confirms the printed code at the provider as `subject`. */
  async function loginAs(subject: string) {
    let confirmed: Promise<void> = Promise.resolve();
    const told: string[] = [];
    const result = deviceLogin({
      registry,
      tell(line) {
        told.push(line);
        confirmed = op.confirmDevice(/open (\S+) and confirm/.exec(line)![1], subject);
      },
      // The first poll waits for the person; later ones (none expected) pass at once.
      sleep: () => confirmed,
    });
    return { result, told };
  }

  it('signs a user in on another device and answers a personal access token the admin API accepts', async () => {
    const { result, told } = await loginAs('sub-dana');
    const signedIn = await result;
    expect(told[0]).toMatch(new RegExp(`^To sign in, open ${op.issuer}/device\\?user_code=\\S+ and confirm the code \\S+$`));
    expect(signedIn).toMatchObject({ username: 'dana', token: expect.stringMatching(/^lpat_/), tokenName: expect.stringMatching(/^cli-/), expiresInSeconds: 720 * 3600 });
    const me = await fetch(`${registry}/admin/v1/users/dana/tokens`, { headers: { authorization: `Basic ${Buffer.from(`dana:${signedIn.token}`).toString('base64')}` } });
    // dana is no admin: the credentials are good (403, not 401).
    expect(me.status).toBe(403);
    const token = await fetch(`${registry}/token?service=lading`, { headers: { authorization: `Basic ${Buffer.from(`dana:${signedIn.token}`).toString('base64')}` } });
    expect(token.status).toBe(200);
    expect((await meta.listAccessTokens(deps.db, 'dana')).map((t) => t.name)).toEqual([signedIn.tokenName]);
  });

  it("carries the sign-in's groups on the personal access token, to its tokens and identity tokens, and drops them at their bound", async () => {
    await meta.upsertNamespace(deps.db, 'devteam', false);
    await meta.addGrant(deps.db, 'devteam', 'group', 'devs', 'pull');
    const { result } = await loginAs('sub-kim');
    const { token: pat } = await result;
    const basic = { authorization: `Basic ${Buffer.from(`kim:${pat}`).toString('base64')}` };
    const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8')) as { groups?: string[]; access: Array<{ name: string; actions: string[] }> };
    const pullToken = async (headers: Record<string, string>) => claimsOf(((await (await fetch(`${registry}/token?service=lading&scope=repository:devteam/app:pull`, { headers })).json()) as { token: string }).token);
    const viaPat = await pullToken(basic);
    expect(viaPat.groups).toEqual(['devs']);
    expect(viaPat.access).toEqual([{ type: 'repository', name: 'devteam/app', actions: ['pull'] }]);
    // docker login with the token: its identity token carries the groups too, read from the token at each use.
    const identity = ((await (await fetch(`${registry}/token?service=lading&offline_token=true&client_id=docker`, { headers: basic })).json()) as { refresh_token: string }).refresh_token;
    const refreshed = async () => {
      const res = await fetch(`${registry}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: identity, service: 'lading', scope: 'repository:devteam/app:pull' }),
      });
      expect(res.status).toBe(200);
      return claimsOf(((await res.json()) as { access_token: string }).access_token);
    };
    expect((await refreshed()).access[0].actions).toEqual(['pull']);
    // The bound passes (the token lasts auth.refreshTtl, and so do its groups; here they are made to expire now):
    // the token still signs in, with no groups, and the identity token made from it loses them as well.
    await deps.db.query(`UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash LIKE 'pat-groups:%' AND principal_name = 'kim'`);
    const after = await pullToken(basic);
    expect(after.groups).toBeUndefined();
    expect(after.access).toEqual([{ type: 'repository', name: 'devteam/app', actions: [] }]);
    expect((await refreshed()).access[0].actions).toEqual([]);
  });

  it('refuses, with the registry\'s reason, a user in none of allowedGroups', async () => {
    const { result } = await loginAs('sub-zed');
    await expect(result).rejects.toThrow(DeviceLoginError);
    await expect(result).rejects.toThrow(/none of the groups allowed/);
    expect(await meta.findUser(deps.db, 'zed')).toBeNull();
  });

  it('refuses an ID token exchanged a second time, and a token that is no JWT of the provider, with 401', async () => {
    let idToken = '';
    const recording: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (String(input).startsWith(op.issuer) && res.ok && init?.method === 'POST') {
        const body = (await res.clone().json()) as { id_token?: string };
        if (body.id_token) idToken = body.id_token;
      }
      return res;
    };
    let confirmed: Promise<void> = Promise.resolve();
    await deviceLogin({ registry, fetch: recording, tell: (line) => void (confirmed = op.confirmDevice(/open (\S+) and confirm/.exec(line)![1], 'sub-lee')), sleep: () => confirmed });
    expect(idToken).toMatch(/^eyJ/);
    const again = await exchange(idToken);
    expect(again.status).toBe(401);
    expect(((await again.json()) as { errors: Array<{ message: string }> }).errors[0].message).toContain('already been exchanged');
    const forged = await exchange('eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln');
    expect(forged.status).toBe(401);
    expect((await meta.listAccessTokens(deps.db, 'lee')).length).toBe(1);
  });

  it("refuses an ID token the provider issued to the console's client (another audience) with 401, making nothing", async () => {
    // The console's code flow with PKCE, as a browser and the registry's callback run it, for ana.
    const verifier = randomBytes(32).toString('base64url');
    const authorize = new URL(`${op.issuer}/auth`);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: op.clientId,
      redirect_uri: 'http://lading.test/ui/api/oidc/callback',
      scope: 'openid profile email groups',
      state: randomBytes(16).toString('base64url'),
      nonce: randomBytes(16).toString('base64url'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    const back = await op.authorize(authorize.toString(), 'sub-ana');
    const tokens = await fetch(`${op.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${op.clientId}:${op.clientSecret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: back.searchParams.get('code')!, redirect_uri: 'http://lading.test/ui/api/oidc/callback', code_verifier: verifier }),
    });
    const { id_token: consoleIdToken } = (await tokens.json()) as { id_token: string };
    expect(JSON.parse(Buffer.from(consoleIdToken.split('.')[1], 'base64url').toString('utf8')).aud).toBe(op.clientId);
    const res = await exchange(consoleIdToken);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { errors: Array<{ message: string }> }).errors[0].message).toContain('another audience');
    expect(await meta.findUser(deps.db, 'ana')).toBeNull();
  });

  it('signs in with an ID token signed after the provider rotated its keys (the JWKS is fetched again)', async () => {
    const before = op.kids()[0];
    await op.rotateKeys();
    expect(op.kids()).toEqual([expect.any(String), before]);
    const { result } = await loginAs('sub-rot');
    await expect(result).resolves.toMatchObject({ username: 'rot', token: expect.stringMatching(/^lpat_/) });
  });

  it('refuses an ID token that has expired (beyond 60 s of skew) with 401, making nothing', async () => {
    let idToken = '';
    const recording: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (String(input).startsWith(op.issuer) && res.ok && init?.method === 'POST') {
        const body = (await res.clone().json()) as { id_token?: string };
        if (body.id_token) idToken = body.id_token;
      }
      return res;
    };
    // The CLI gets an ID token for old and exchanges it nowhere: its POST to the registry's /token never leaves.
    const keepToken: typeof fetch = async (input, init) => (String(input) === `${registry}/token` ? new Response('{}', { status: 599 }) : recording(input, init));
    let confirmed: Promise<void> = Promise.resolve();
    await expect(deviceLogin({ registry, fetch: keepToken, tell: (line) => void (confirmed = op.confirmDevice(/open (\S+) and confirm/.exec(line)![1], 'sub-old')), sleep: () => confirmed })).rejects.toThrow(DeviceLoginError);
    expect(idToken).toMatch(/^eyJ/);
    // A registry whose clock is two hours on: the token's exp (the provider's default is one hour) has passed.
    const later = http.createServer(createAuthService({ db: deps.db, config, logger: deps.logger, oidcTransport: { now: () => Date.now() + 2 * 3600_000 } }).app);
    await new Promise<void>((resolve) => later.listen(0, '127.0.0.1', resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(later.address() as AddressInfo).port}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: idToken, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token', requested_token_type: 'urn:lading:params:oauth:token-type:personal-access-token' }),
      });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { errors: Array<{ message: string }> }).errors[0].message).toContain('expired');
      expect(await meta.findUser(deps.db, 'old')).toBeNull();
    } finally {
      later.closeAllConnections();
      await new Promise((resolve) => later.close(resolve));
    }
  });
});
