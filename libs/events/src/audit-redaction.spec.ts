import { REDACTED, isSecretKey, redactSecrets } from './audit-redaction';

describe('audit redaction', () => {
  it('never keeps a password, secret, token value, webhook secret or proxy password, however deep', () => {
    const secrets = ['hunter2-password', 'lrs_robotSecretValue', 'lpat_personalAccessToken', 'whsec_webhookSecretValue=', 'upstream-pa55word', 'argon2-hash', 'lrt_refresh'];
    const body = {
      name: 'bob',
      password: secrets[0],
      robot: { login: 'robot$ci', secret: secrets[1] },
      tokens: [{ name: 'ci', token: secrets[2] }],
      webhook: { url: 'https://hooks.example/x', secret: secrets[3] },
      proxy: { upstream: 'https://ghcr.io', username: 'bot', password: secrets[4], upstreamPassword: secrets[4] },
      user: { passwordHash: secrets[5], secret_hash: secrets[5] },
      headers: { Authorization: 'Basic Ym9iOmh1bnRlcjI=' },
      // A generated secret under an innocent key is still recognised by its prefix.
      note: secrets[6],
    };
    const text = JSON.stringify(redactSecrets(body));
    for (const secret of [...secrets, 'Basic Ym9iOmh1bnRlcjI=']) expect(text).not.toContain(secret);
  });

  it('keeps what is not secret: names, logins, URLs, flags, numbers, dates as ISO strings', () => {
    expect(redactSecrets({ name: 'bob', login: 'robot$ci', admin: true, size: 3, at: new Date('2026-12-07T10:00:00Z'), list: ['a', null] })).toEqual({
      name: 'bob',
      login: 'robot$ci',
      admin: true,
      size: 3,
      at: '2026-12-07T10:00:00.000Z',
      list: ['a', null],
    });
    expect(redactSecrets({ password: 'x' })).toEqual({ password: REDACTED });
    expect(redactSecrets(undefined)).toBeNull();
  });

  it('names secret keys whatever their case or separators', () => {
    for (const key of ['password', 'Password', 'upstream_password', 'secret', 'secretHash', 'token', 'refresh-token', 'authorization', 'privateKey']) expect(isSecretKey(key)).toBe(true);
    for (const key of ['name', 'username', 'login', 'url', 'namespace', 'upstream', 'kid']) expect(isSecretKey(key)).toBe(false);
  });

  it('redacts what is nested past the depth it copies, so a deep body cannot smuggle a secret through', () => {
    let deep: unknown = { password: 'deep-secret' };
    for (let i = 0; i < 40; i++) deep = { next: deep };
    expect(JSON.stringify(redactSecrets(deep))).not.toContain('deep-secret');
  });
});
