import { ConfigError, loadConfig, parseConfig } from './load';

describe('auth.oidc and auth.workloadIdentity', () => {
  it('is off by default, with no trust rules', () => {
    const config = loadConfig({});
    expect(config.auth.oidc).toBeUndefined();
    expect(config.auth.workloadIdentity).toEqual([]);
  });

  it('takes every auth.oidc key from LADING_AUTH_OIDC_* variables, with the documented defaults', () => {
    const config = loadConfig({
      LADING_AUTH_OIDC_ISSUER: 'https://login.example.com/realms/corp',
      LADING_AUTH_OIDC_CLIENTID: 'lading',
      LADING_AUTH_OIDC_CLIENTSECRETFILE: '/run/secrets/oidc',
      LADING_AUTH_OIDC_ALLOWEDGROUPS: 'registry-users, registry-admins',
    });
    expect(config.auth.oidc).toEqual({
      issuer: 'https://login.example.com/realms/corp',
      clientId: 'lading',
      clientSecretFile: '/run/secrets/oidc',
      scopes: ['openid', 'profile', 'email'],
      usernameClaim: 'preferred_username',
      groupsClaim: 'groups',
      allowedDomains: [],
      allowedGroups: ['registry-users', 'registry-admins'],
    });
  });

  it('refuses a client secret given both inline and as a file, and a plain-http issuer off loopback, naming the key', () => {
    expect(() => loadConfig({ LADING_AUTH_OIDC_ISSUER: 'https://a.example', LADING_AUTH_OIDC_CLIENTID: 'x', LADING_AUTH_OIDC_CLIENTSECRET: 's', LADING_AUTH_OIDC_CLIENTSECRETFILE: '/f' })).toThrow(
      /auth\.oidc\.clientSecretFile: set clientSecret or clientSecretFile, not both/,
    );
    expect(() => loadConfig({ LADING_AUTH_OIDC_ISSUER: 'http://login.example.com', LADING_AUTH_OIDC_CLIENTID: 'x' })).toThrow(ConfigError);
    expect(loadConfig({ LADING_AUTH_OIDC_ISSUER: 'http://127.0.0.1:9000', LADING_AUTH_OIDC_CLIENTID: 'x' }).auth.oidc?.issuer).toBe('http://127.0.0.1:9000');
  });

  it('refuses a trust rule without grants, with a bad namespace, or named twice', () => {
    const rule = { name: 'ci', issuer: 'https://token.actions.githubusercontent.com', audience: 'lading', grants: [{ namespace: 'team', role: 'push' }] };
    expect(parseConfig({ auth: { workloadIdentity: [rule] } }).auth.workloadIdentity[0]).toMatchObject({ claims: {}, tokenTtl: '5m' });
    expect(() => parseConfig({ auth: { workloadIdentity: [{ ...rule, grants: [] }] } })).toThrow(/auth\.workloadIdentity\.0\.grants/);
    expect(() => parseConfig({ auth: { workloadIdentity: [{ ...rule, grants: [{ namespace: 'Team!', role: 'push' }] }] } })).toThrow(/namespace/);
    expect(() => parseConfig({ auth: { workloadIdentity: [rule, rule] } })).toThrow(/rule ci is named twice/);
  });
});
