import { createLogger } from '@lading/telemetry';
import { Writable } from 'node:stream';
import { ConfigError, loadConfig, parseConfig } from './load';
import { checkProxyRule } from './schema';

function problems(input: Record<string, unknown>): string[] {
  try {
    parseConfig(input);
  } catch (err) {
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('proxies and mirror', () => {
  it('takes a proxy namespace with its upstream, credentials, tag TTL (10m by default) and evictAfter (none by default)', () => {
    const config = parseConfig({
      proxies: [
        { namespace: 'hub', upstream: 'https://registry-1.docker.io', username: 'u', password: 'p' },
        { namespace: 'cache/ghcr', upstream: 'http://127.0.0.1:5001', tagTtl: '30s', evictAfter: '30d' },
      ],
      mirror: { namespace: 'hub' },
    });
    expect(config.proxies).toEqual([
      { namespace: 'hub', upstream: 'https://registry-1.docker.io', username: 'u', password: 'p', tagTtl: '10m' },
      { namespace: 'cache/ghcr', upstream: 'http://127.0.0.1:5001', tagTtl: '30s', evictAfter: '30d' },
    ]);
    expect(config.mirror.namespace).toBe('hub');
    expect(parseConfig({}).proxies).toEqual([]);
  });

  it.each([
    ['a non-http scheme', { namespace: 'hub', upstream: 'ftp://example.com' }, /proxies\.0\.upstream: an http/],
    ['a file URL', { namespace: 'hub', upstream: 'file:///etc/passwd' }, /proxies\.0\.upstream/],
    ['a path on the upstream', { namespace: 'hub', upstream: 'https://example.com/v2/other' }, /without path/],
    ['credentials in the URL', { namespace: 'hub', upstream: 'https://u:p@example.com' }, /without path, query or credentials/],
    ['a bad namespace', { namespace: 'Hub/', upstream: 'https://example.com' }, /proxies\.0\.namespace/],
    ['a username without password', { namespace: 'hub', upstream: 'https://example.com', username: 'u' }, /username and password go together/],
    ['an evictAfter that is not a duration', { namespace: 'hub', upstream: 'https://example.com', evictAfter: '1 month' }, /proxies\.0\.evictAfter: a duration/],
  ])('refuses %s', (_what, rule, message) => {
    expect(problems({ proxies: [rule] }).join('\n')).toMatch(message);
  });

  it('refuses a namespace proxied twice or nested in another', () => {
    const found = problems({
      proxies: [
        { namespace: 'hub', upstream: 'https://a.example' },
        { namespace: 'hub', upstream: 'https://b.example' },
        { namespace: 'hub/library', upstream: 'https://c.example' },
      ],
    }).join('\n');
    expect(found).toMatch(/proxies\.1\.namespace: namespace hub is proxied twice/);
    expect(found).toMatch(/proxies\.2\.namespace: namespace hub\/library is nested in the proxied namespace hub/);
  });

  it('takes a mirror namespace no configured proxy names (a stored rule may), and maps LADING_MIRROR_NAMESPACE', () => {
    expect(parseConfig({ mirror: { namespace: 'hub' } }).mirror.namespace).toBe('hub');
    expect(loadConfig({ LADING_MIRROR_NAMESPACE: 'hub' }).mirror.namespace).toBe('hub');
    expect(() => loadConfig({ LADING_MIRROR_NAMESPACE: 'Hub/' })).toThrow(/mirror\.namespace.*LADING_MIRROR_NAMESPACE/);
  });

  it('checks one rule as proxies[] would, against the namespaces already proxied (the admin API\'s check)', () => {
    expect(checkProxyRule({ namespace: 'cache/ghcr', upstream: 'https://ghcr.io', username: 'u', password: 'p' }, ['hub'])).toEqual({
      ok: true,
      rule: { namespace: 'cache/ghcr', upstream: 'https://ghcr.io', username: 'u', password: 'p', tagTtl: '10m' },
    });
    const refused = (input: unknown, others: string[] = []) => {
      const check = checkProxyRule(input, others);
      return check.ok ? [] : check.problems;
    };
    expect(refused({ namespace: 'hub', upstream: 'ftp://example.com' })).toEqual(['upstream: an http:// or https:// URL']);
    expect(refused({ namespace: 'hub', upstream: 'https://example.com', username: 'u' })).toEqual(['password: username and password go together']);
    expect(refused({ namespace: 'hub', upstream: 'https://example.com', tagTtl: 'soon' }).join()).toMatch(/^tagTtl: a duration/);
    expect(refused({ namespace: 'hub', upstream: 'https://example.com', extra: 1 }).join()).toMatch(/extra/);
    expect(refused({ namespace: 'hub/library', upstream: 'https://example.com' }, ['hub'])).toEqual(['namespace: namespace hub/library is nested in the proxied namespace hub']);
    expect(refused({ namespace: 'hub', upstream: 'https://example.com' }, ['hub/library'])).toEqual(['namespace: namespace hub holds the proxied namespace hub/library']);
    expect(refused({ namespace: 'hubx', upstream: 'https://example.com' }, ['hub'])).toEqual([]);
  });

  it('never logs an upstream password: the logger redacts it wherever the configuration is logged', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    const config = parseConfig({ proxies: [{ namespace: 'hub', upstream: 'https://example.com', username: 'u', password: 'sup3r-s3cret-value' }] });
    createLogger({ service: 'test', level: 'info', destination: sink }).info({ config }, 'configuration');
    const text = lines.join('');
    expect(text).toContain('hub');
    expect(text).not.toContain('sup3r-s3cret-value');
  });
});
