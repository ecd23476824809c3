/**
 * `lading-admin proxies ...`, run as a real process against an embedded registry (auth on) with one proxy in its
 * configuration file: stored proxies are set (the password from standard input), listed without a password,
 * replaced and removed; the configuration's proxy is listed but cannot be changed.
 */
import type { EmbeddedRegistry } from '@lading/embedded';
import { type ServedRegistry, serveEmbeddedRegistry } from '@lading/embedded/test/served-registry';
import * as meta from '@lading/metadata';
import { ADMIN, cli, cliAll } from './lading-admin-testing';

const UPSTREAM_PASSWORD = 'cli-upstream-pa55word';

describe('lading-admin proxies', () => {
  let served: ServedRegistry;
  let registry: EmbeddedRegistry;
  let url: string;

  beforeAll(async () => {
    served = await serveEmbeddedRegistry({
      auth: { enabled: true },
      admin: ADMIN,
      proxies: [{ namespace: 'hub', upstream: 'https://registry-1.docker.io' }],
      gc: { enabled: false },
    });
    ({ registry, url } = served);
  });
  afterAll(async () => served?.close());

  const ok = async (args: string[], options: Parameters<typeof cli>[1] = {}) => {
    const result = await cli(['--url', url, ...args], options);
    expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
    return result.stdout;
  };

  it('sets, lists (never a password), replaces and removes stored proxies; the configuration\'s is listed read-only', async () => {
    expect(await ok(['proxies', 'set', 'cache/ghcr', '--upstream', 'https://ghcr.io', '--upstream-username', 'bot', '--upstream-password-stdin', '--evict-after', '30d'], { stdin: `${UPSTREAM_PASSWORD}\n` })).toBe(
      'set proxy cache/ghcr of https://ghcr.io (as bot, tag TTL 10m, evict after 30d)\n',
    );
    expect(await ok(['proxies', 'set', 'quay', '--upstream', 'https://quay.io', '--tag-ttl', '1m'])).toBe('set proxy quay of https://quay.io (anonymous, tag TTL 1m)\n');
    const listed = await ok(['proxies', 'list']);
    expect(listed).toMatch(
      /^NAMESPACE +UPSTREAM +USERNAME +PASSWORD +TAG-TTL +EVICT-AFTER +SOURCE\nhub +https:\/\/registry-1\.docker\.io +- +- +10m +- +config\ncache\/ghcr +https:\/\/ghcr\.io +bot +set +10m +30d +stored\nquay +https:\/\/quay\.io +- +- +1m +- +stored\n$/,
    );
    const json = await ok(['proxies', 'list', '--json']);
    expect(JSON.parse(json).proxies).toHaveLength(3);
    expect(`${listed}${json}`).not.toContain(UPSTREAM_PASSWORD);
    const stored = await meta.listStoredProxyRules(registry.db);
    expect(stored.find((r) => r.namespace === 'cache/ghcr')?.storedPassword).toBeTruthy();

    // A replacement is the whole rule: without credentials the upstream is anonymous from now on.
    expect(await ok(['proxies', 'set', 'cache/ghcr', '--upstream', 'https://ghcr.io'])).toBe('set proxy cache/ghcr of https://ghcr.io (anonymous, tag TTL 10m)\n');
    expect(await ok(['proxies', 'remove', 'quay'])).toBe('removed proxy quay; its cached content stays as ordinary content\n');
    expect(await ok(['proxies', 'remove', 'cache/ghcr'])).toBe('removed proxy cache/ghcr; its cached content stays as ordinary content\n');
    expect(await ok(['proxies', 'list'])).toMatch(/SOURCE\nhub +https:\/\/registry-1\.docker\.io +- +- +10m +- +config\n$/);
  });

  it('fails with one clear line and a non-zero exit status, changing nothing', async () => {
    const base = ['--url', url];
    const cases: Array<{ args: string[]; env?: Record<string, string>; code: number; error: RegExp }> = [
      { args: [...base, 'proxies', 'set', 'hub', '--upstream', 'https://elsewhere.example'], code: 1, error: /^lading-admin: the proxy hub comes from the configuration file \(proxies\); change it there, not through the admin API \(409 DENIED\)\n$/ },
      { args: [...base, 'proxies', 'remove', 'hub'], code: 1, error: /comes from the configuration file .*\(409 DENIED\)\n$/ },
      { args: [...base, 'proxies', 'remove', 'nothing'], code: 1, error: /^lading-admin: no stored proxy nothing \(404 NOT_FOUND\)\n$/ },
      { args: [...base, 'proxies', 'set', 'hub/library', '--upstream', 'https://example.com'], code: 1, error: /nested in the proxied namespace hub \(400 UNSUPPORTED\)\n$/ },
      { args: [...base, 'proxies', 'set', 'mirror', '--upstream', 'ftp://example.com'], code: 1, error: /^lading-admin: upstream: an http:\/\/ or https:\/\/ URL \(400 UNSUPPORTED\)\n$/ },
      { args: [...base, 'proxies', 'set', 'mirror', '--upstream', 'https://example.com', '--tag-ttl', 'soon'], code: 1, error: /^lading-admin: tagTtl: a duration/ },
      { args: [...base, 'proxies', 'set', 'mirror'], code: 2, error: /^lading-admin: proxies set needs --upstream URL\n$/ },
      { args: [...base, 'proxies', 'set', 'mirror', '--upstream', 'https://example.com', '--upstream-username', 'u'], code: 2, error: /^lading-admin: --upstream-username needs the upstream password/ },
      { args: [...base, 'proxies', 'set', 'mirror', '--upstream', 'https://example.com', '--upstream-password-stdin'], code: 2, error: /^lading-admin: --upstream-password-stdin needs --upstream-username\n$/ },
      { args: [...base, 'proxies', 'set', 'mirror', '--upstream', 'https://example.com', '--upstream-username', 'u', '--upstream-password-stdin', '--password-stdin'], code: 2, error: /^lading-admin: only one password can be read from standard input\n$/ },
    ];
    const results = await cliAll(cases);
    for (const [i, result] of results.entries()) {
      const { args, code, error } = cases[i];
      expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code, stdout: '' });
      expect(result.stderr).toMatch(error);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(await meta.listStoredProxyRules(registry.db)).toEqual([]);
  });
});
