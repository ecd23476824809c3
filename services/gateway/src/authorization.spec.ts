import request from 'supertest';
import type { RawHandler } from '@lading/http';
import { createLogger } from '@lading/telemetry';
import { TokenError } from '@lading/access';
import { createAuthorization, quotedString, validHostAndPort } from './authorization';
import { createGateway } from './gateway';

const logger = createLogger({ service: 'test', level: 'silent' });
const answered: RawHandler = (_req, res) => {
  res.statusCode = 299;
  res.end();
};

/** A gateway whose every token is invalid: each /v2 request gets the challenge. */
function gateway(options: { trustedProxies?: number; realm?: string } = {}) {
  const authorize = createAuthorization({
    verifier: {
      verify: () => Promise.reject(new TokenError('malformed', 'bad token')),
    },
    service: 'lading',
    ...options,
  });
  return createGateway({ dispatch: { blob: answered, manifest: answered, auth: answered }, logger, authorize });
}

/** The parameters of a Bearer challenge, parsed as a client would (quoted-strings with backslash escapes). */
function challengeParameters(header: string | undefined): Record<string, string> {
  expect(header).toMatch(/^Bearer /);
  const params: Record<string, string> = {};
  const re = /([a-z]+)="((?:[^"\\]|\\.)*)"(?:,|$)/gy;
  re.lastIndex = 'Bearer '.length;
  let m: RegExpExecArray | null;
  while ((m = re.exec(header!)) !== null) params[m[1]] = m[2].replace(/\\(.)/g, '$1');
  // Everything was consumed: no stray text a client could read as another parameter.
  expect(re.lastIndex === 0 ? header!.length : re.lastIndex).toBe(header!.length);
  return params;
}

describe('the challenge realm', () => {
  it('ignores X-Forwarded-Proto and X-Forwarded-Host without trusted proxies (the scheme is the listener\'s)', async () => {
    const res = await request(gateway()).get('/v2/').set('Host', 'registry.example:5000').set('X-Forwarded-Proto', 'javascript').set('X-Forwarded-Host', 'evil.example');
    expect(res.status).toBe(401);
    expect(challengeParameters(res.headers['www-authenticate']).realm).toBe('http://registry.example:5000/token');
  });

  it.each(['evil"x', 'javascript:alert(1)', 'a b', 'x/y', 'host:99999', '-bad.example', 'a..b', 'user@host', '[::1'])(
    'falls back to the listener\'s own address when Host is %j, not a valid host[:port]',
    async (host) => {
      const res = await request(gateway()).get('/v2/').set('Host', host);
      expect(challengeParameters(res.headers['www-authenticate']).realm).toMatch(/^http:\/\/(127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):\d+\/token$/);
    },
  );

  it('believes X-Forwarded-Proto (http or https only) and X-Forwarded-Host behind a trusted proxy', async () => {
    const app = gateway({ trustedProxies: 1 });
    const https = await request(app).get('/v2/').set('Host', 'internal:5000').set('X-Forwarded-Proto', 'https').set('X-Forwarded-Host', 'registry.example');
    expect(challengeParameters(https.headers['www-authenticate']).realm).toBe('https://registry.example/token');
    const hostile = await request(app).get('/v2/').set('Host', 'internal:5000').set('X-Forwarded-Proto', 'javascript').set('X-Forwarded-Host', 'evil"x');
    expect(challengeParameters(hostile.headers['www-authenticate']).realm).toBe('http://internal:5000/token');
    const listed = await request(app).get('/v2/').set('Host', 'internal:5000').set('X-Forwarded-Proto', 'HTTPS, http');
    expect(challengeParameters(listed.headers['www-authenticate']).realm).toBe('https://internal:5000/token');
  });

  it('uses the configured realm whatever the request says', async () => {
    const res = await request(gateway({ realm: 'https://auth.example/token' })).get('/v2/').set('Host', 'evil.example').set('X-Forwarded-Proto', 'javascript');
    expect(challengeParameters(res.headers['www-authenticate']).realm).toBe('https://auth.example/token');
  });
});

describe('the mount source in the challenge', () => {
  const mount = `/v2/team/app/blobs/uploads/?mount=sha256:${'a'.repeat(64)}&from=`;

  it.each([
    ['a quote that would add a parameter', 'a%22,error%3D%22x'],
    ['a non-Latin-1 name (setHeader would throw)', '%E2%82%AC'],
    ['a CR/LF', 'a%0D%0AX-Injected:%20yes'],
    ['a U+0000', 'a%00'],
  ])('refuses a from= with %s with 400 NAME_INVALID in the envelope, before any challenge is built', async (_what, from) => {
    const res = await request(gateway()).post(`${mount}${from}`);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.errors[0].code).toBe('NAME_INVALID');
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.headers['x-injected']).toBeUndefined();
  });

  it('names a valid source in the challenge scope, and nothing else', async () => {
    const res = await request(gateway()).post(`${mount}other/app`);
    expect(res.status).toBe(401);
    expect(challengeParameters((await request(gateway()).post(`${mount}other/app`).set('Authorization', 'Bearer x')).headers['www-authenticate']).error).toBe('invalid_token');
    expect(challengeParameters(res.headers['www-authenticate'])).toEqual({
      realm: expect.stringMatching(/^http:\/\//),
      service: 'lading',
      scope: 'repository:team/app:pull,push repository:other/app:pull',
    });
  });
});

describe('quotedString', () => {
  it('escapes quotes and backslashes and percent-encodes what is not printable ASCII', () => {
    expect(quotedString('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(quotedString('\u20ac\r\n\u0000\ud800')).toBe('"%E2%82%AC%0D%0A%00%EF%BF%BD"');
    expect(quotedString('https://r.example/token')).toBe('"https://r.example/token"');
  });
});

describe('validHostAndPort', () => {
  it.each(['registry.example', 'registry.example:5000', '127.0.0.1:5000', '[::1]:5000', '[2001:db8::1]', 'localhost', 'my_host.local'])('accepts %s', (host) => {
    expect(validHostAndPort(host)).toBe(host);
  });

  it.each(['', 'a b', 'x:65536', 'x:', ':80', 'x/y', 'x?y', 'x#y', 'a"b', 'a\u0000b', 'ex\u00e4mple.com', `${'a'.repeat(64)}.com`, 'http://x'])('refuses %j', (host) => {
    expect(validHostAndPort(host)).toBeUndefined();
  });
});
