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

  beforeAll(async () => {
    deps = await createTestDeps();
    op = await startOpenIdProvider('http://lading.test/ui/api/oidc/callback');
    op.accounts.set('sub-dana', { preferred_username: 'dana', email: 'dana@corp.example', email_verified: true, groups: ['devs'] });
    // Another person for the replay test: a provider signs the same claims in the same second into the same ID token.
    op.accounts.set('sub-lee', { preferred_username: 'lee', email: 'lee@corp.example', email_verified: true, groups: ['devs'] });
    // Another for the groups test, for the same reason.
    op.accounts.set('sub-kim', { preferred_username: 'kim', email: 'kim@corp.example', email_verified: true, groups: ['devs'] });
    op.accounts.set('sub-zed', { preferred_username: 'zed', email: 'zed@corp.example', email_verified: true, groups: ['contractors'] });
    const config = parseConfig({
      ...deps.config,
      http: { ...deps.config.http, host: 'http://lading.test' },
      auth: { ...deps.config.auth, enabled: true, oidc: { issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret, cliClientId: op.cliClientId, scopes: ['openid', 'profile', 'email', 'groups'], allowedGroups: ['devs'] } },
    } as never);
    const { app } = createAuthService({ db: deps.db, config, logger: deps.logger });
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
    const exchange = (token: string) =>
      fetch(`${registry}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token', requested_token_type: 'urn:lading:params:oauth:token-type:personal-access-token' }),
      });
    const again = await exchange(idToken);
    expect(again.status).toBe(401);
    expect(((await again.json()) as { errors: Array<{ message: string }> }).errors[0].message).toContain('already been exchanged');
    const forged = await exchange('eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln');
    expect(forged.status).toBe(401);
    expect((await meta.listAccessTokens(deps.db, 'lee')).length).toBe(1);
  });
});
