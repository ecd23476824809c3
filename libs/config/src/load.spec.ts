import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, applyEnv, loadConfig, parseConfig } from './load';
import { durationMs } from './duration';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig defaults', () => {
  it('gives every key of the README table its documented default when there is no file and no LADING_* variable', () => {
    const config = loadConfig({ PATH: '/usr/bin', HOME: '/root' });
    expect(config).toMatchObject({
      mode: 'embedded',
      http: { addr: '0.0.0.0:5000' },
      data: { dir: './data' },
      storage: { fsync: true },
      registry: { deleteEnabled: true, manifestMaxBytes: 4194304, maxPageSize: 1000 },
      gc: { reviewDelay: '24h', allowShortDelay: false },
      log: { level: 'info', access: true },
    });
    expect(config.http.host).toBeUndefined();
    expect(config.storage.root).toBeUndefined();
    expect(config.database.path).toBeUndefined();
  });
});

describe('LADING_* environment variables', () => {
  it('maps LADING_HTTP_ADDR onto http.addr', () => {
    expect(loadConfig({ LADING_HTTP_ADDR: '127.0.0.1:6000' }).http.addr).toBe('127.0.0.1:6000');
  });

  it('matches segments to camelCase keys case-insensitively and coerces booleans', () => {
    expect(loadConfig({ LADING_REGISTRY_DELETEENABLED: 'false' }).registry.deleteEnabled).toBe(false);
    expect(loadConfig({ LADING_LOG_ACCESS: '0' }).log.access).toBe(false);
    expect(loadConfig({ LADING_STORAGE_FSYNC: 'false' }).storage.fsync).toBe(false);
    expect(loadConfig({ LADING_GC_ALLOWSHORTDELAY: 'yes', LADING_GC_REVIEWDELAY: '5s' }).gc).toMatchObject({ allowShortDelay: true, reviewDelay: '5s' });
  });

  it('coerces numbers', () => {
    const config = loadConfig({ LADING_REGISTRY_MAXPAGESIZE: '50', LADING_REGISTRY_MANIFESTMAXBYTES: '1024' });
    expect(config.registry.maxPageSize).toBe(50);
    expect(config.registry.manifestMaxBytes).toBe(1024);
  });

  it('sets optional keys that have no default', () => {
    const config = loadConfig({ LADING_STORAGE_ROOT: '/srv/blobs', LADING_DATABASE_PATH: '/srv/db', LADING_HTTP_HOST: 'https://registry.example.com' });
    expect(config.storage.root).toBe('/srv/blobs');
    expect(config.database.path).toBe('/srv/db');
    expect(config.http.host).toBe('https://registry.example.com');
  });

  it.each(['LADING_HTTP_PORT', 'LADING_NOPE', 'LADING_HTTP_ADDR_EXTRA', 'LADING_REGISTRY_DELETE_ENABLED'])('refuses the unknown variable %s, naming it', (name) => {
    const err = configError(() => loadConfig({ [name]: '1' }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(name);
  });

  it('ignores variables without the LADING_ prefix', () => {
    expect(loadConfig({ HTTP_ADDR: 'nonsense', LADINGHTTP_ADDR: 'nonsense' }).http.addr).toBe('0.0.0.0:5000');
  });

  it.each([
    ['LADING_REGISTRY_MAXPAGESIZE', 'abc', 'registry.maxPageSize'],
    ['LADING_REGISTRY_MAXPAGESIZE', '1.5', 'registry.maxPageSize'],
    ['LADING_REGISTRY_MAXPAGESIZE', '0', 'registry.maxPageSize'],
    ['LADING_REGISTRY_DELETEENABLED', 'maybe', 'registry.deleteEnabled'],
    ['LADING_LOG_LEVEL', 'loud', 'log.level'],
    ['LADING_HTTP_ADDR', 'localhost', 'http.addr'],
    ['LADING_HTTP_HOST', 'not a url', 'http.host'],
    ['LADING_MODE', 'cluster', 'mode'],
  ])('refuses %s=%s with an error naming %s', (name, value, key) => {
    const err = configError(() => loadConfig({ [name]: value }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(`at ${key}:`);
  });

  it('applies variables on top of a copy of the file values without changing them', () => {
    const fromFile = { http: { addr: '1.2.3.4:5' }, registry: { maxPageSize: 10 } };
    const merged = applyEnv(fromFile, { LADING_HTTP_ADDR: '5.6.7.8:9' });
    expect(merged).toEqual({ http: { addr: '5.6.7.8:9' }, registry: { maxPageSize: 10 } });
    expect(fromFile.http.addr).toBe('1.2.3.4:5');
  });
});

describe('console', () => {
  it('serves the console from dist/console with 8 h sessions and a Secure cookie by default', () => {
    expect(loadConfig({}).console).toEqual({ enabled: true, assets: 'dist/console', sessionTtl: '8h', secureCookie: true, maxEventStreams: 100, heartbeat: '15s' });
  });

  it('takes every console key from its LADING_CONSOLE_* variable', () => {
    const config = loadConfig({
      LADING_CONSOLE_ENABLED: 'false',
      LADING_CONSOLE_ASSETS: '/srv/console',
      LADING_CONSOLE_SESSIONTTL: '1h',
      LADING_CONSOLE_SECURECOOKIE: 'false',
      LADING_CONSOLE_MAXEVENTSTREAMS: '5',
      LADING_CONSOLE_HEARTBEAT: '30s',
    });
    expect(config.console).toEqual({ enabled: false, assets: '/srv/console', sessionTtl: '1h', secureCookie: false, maxEventStreams: 5, heartbeat: '30s' });
  });
});

describe('auth.ldap', () => {
  it('is off by default and takes every key from its LADING_AUTH_LDAP_* variable, with defaults for the rest', () => {
    expect(loadConfig({}).auth.ldap).toBeUndefined();
    const config = loadConfig({
      LADING_AUTH_LDAP_URL: 'ldaps://ldap.example.com',
      LADING_AUTH_LDAP_BINDDN: 'cn=lading,ou=services,dc=example,dc=com',
      LADING_AUTH_LDAP_BINDPASSWORDFILE: '/run/secrets/ldap',
      LADING_AUTH_LDAP_USERBASE: 'ou=people,dc=example,dc=com',
      LADING_AUTH_LDAP_GROUPBASE: 'ou=groups,dc=example,dc=com',
      LADING_AUTH_LDAP_NESTEDGROUPS: 'false',
      LADING_AUTH_LDAP_CACHETTL: '2m',
    });
    expect(config.auth.ldap).toEqual({
      url: 'ldaps://ldap.example.com',
      startTls: false,
      bindDn: 'cn=lading,ou=services,dc=example,dc=com',
      bindPasswordFile: '/run/secrets/ldap',
      userBase: 'ou=people,dc=example,dc=com',
      userFilter: '(uid={username})',
      usernameAttribute: 'uid',
      groupBase: 'ou=groups,dc=example,dc=com',
      groupFilter: '(member={dn})',
      groupNameAttribute: 'cn',
      nestedGroups: false,
      maxGroupDepth: 8,
      timeout: '5s',
      cacheTtl: '2m',
      negativeCacheTtl: '30s',
    });
  });

  it('refuses a URL that is not ldap:// or ldaps://, both password sources, StartTLS over ldaps, and a filter without {username}', () => {
    const problems = configError(() =>
      parseConfig({ auth: { ldap: { url: 'http://ldap.example.com', userBase: 'dc=x', userFilter: '(uid=alice)', bindPassword: 'p', bindPasswordFile: '/f' } } }),
    ).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^invalid configuration at auth\.ldap\.url: an ldap:\/\/ or ldaps:\/\/ URL \(environment variable LADING_AUTH_LDAP_URL\)$/),
        expect.stringMatching(/^invalid configuration at auth\.ldap\.userFilter: must contain \{username\}/),
      ]),
    );
    expect(configError(() => parseConfig({ auth: { ldap: { url: 'ldap://l', userBase: 'dc=x', bindPassword: 'p', bindPasswordFile: '/f' } } })).message).toMatch(/auth\.ldap\.bindPasswordFile: set bindPassword or bindPasswordFile, not both/);
    expect(configError(() => parseConfig({ auth: { ldap: { url: 'ldaps://l', userBase: 'dc=x', startTls: true } } })).message).toMatch(/auth\.ldap\.startTls: startTls is for ldap:\/\/ URLs/);
  });
});

describe('configuration file named by LADING_CONFIG', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-config-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  async function file(name: string, text: string): Promise<string> {
    const p = path.join(dir, name);
    await writeFile(p, text);
    return p;
  }

  it('reads the YAML file, and environment variables override it', async () => {
    const p = await file('ok.yaml', 'http:\n  addr: 127.0.0.1:5000\nregistry:\n  deleteEnabled: false\n  maxPageSize: 20\n');
    const config = loadConfig({ LADING_CONFIG: p, LADING_REGISTRY_MAXPAGESIZE: '30' });
    expect(config.http.addr).toBe('127.0.0.1:5000');
    expect(config.registry).toEqual({ deleteEnabled: false, maxPageSize: 30, manifestMaxBytes: 4194304 });
  });

  it('treats an empty file as no settings', async () => {
    expect(loadConfig({ LADING_CONFIG: await file('empty.yaml', '') }).http.addr).toBe('0.0.0.0:5000');
  });

  it('refuses an unknown nested key, naming its full path', async () => {
    const p = await file('unknown.yaml', 'registry:\n  deleteEnabled: true\n  deleteEnabeld: false\n');
    const err = configError(() => loadConfig({ LADING_CONFIG: p }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('registry.deleteEnabeld');
  });

  it('refuses an unknown top-level key, naming it', async () => {
    const p = await file('top.yaml', 'colour: blue\n');
    const err = configError(() => loadConfig({ LADING_CONFIG: p }));
    expect(err.message).toContain('colour');
  });

  it('refuses a bad value, naming its key', async () => {
    const p = await file('bad.yaml', 'registry:\n  maxPageSize: lots\n');
    const err = configError(() => loadConfig({ LADING_CONFIG: p }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('registry.maxPageSize');
  });

  it('refuses a file that is not a mapping', async () => {
    const p = await file('list.yaml', '- a\n- b\n');
    expect(configError(() => loadConfig({ LADING_CONFIG: p })).message).toContain('must be a YAML mapping');
  });

  it('refuses a file that cannot be read, naming it', () => {
    const missing = path.join(dir, 'missing.yaml');
    const err = configError(() => loadConfig({ LADING_CONFIG: missing }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(missing);
  });
});

describe('gc.reviewDelay', () => {
  it('refuses a delay under one minute, naming gc.reviewDelay', () => {
    const err = configError(() => parseConfig({ gc: { reviewDelay: '59s' } }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('gc.reviewDelay');
  });

  it('accepts exactly one minute', () => {
    expect(parseConfig({ gc: { reviewDelay: '1m' } }).gc.reviewDelay).toBe('1m');
    expect(parseConfig({ gc: { reviewDelay: '60000ms' } }).gc.reviewDelay).toBe('60000ms');
  });

  it('accepts a short delay when gc.allowShortDelay is set', () => {
    expect(parseConfig({ gc: { reviewDelay: '100ms', allowShortDelay: true } }).gc).toMatchObject({ reviewDelay: '100ms', allowShortDelay: true });
  });

  it('refuses a value that is not a duration with a ConfigError naming the key', () => {
    const err = configError(() => loadConfig({ LADING_GC_REVIEWDELAY: '1w' }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('gc.reviewDelay');
  });
});

describe('http.tls', () => {
  it('maps LADING_HTTP_TLS_CERTIFICATE and LADING_HTTP_TLS_KEY onto http.tls.certificate and http.tls.key', () => {
    const config = loadConfig({ LADING_HTTP_TLS_CERTIFICATE: '/etc/lading/tls.crt', LADING_HTTP_TLS_KEY: '/etc/lading/tls.key' });
    expect(config.http.tls).toEqual({ certificate: '/etc/lading/tls.crt', key: '/etc/lading/tls.key' });
  });

  it('leaves both unset by default: plain HTTP', () => {
    expect(loadConfig({}).http.tls).toEqual({});
  });

  it('refuses a certificate without its key, naming http.tls.key', () => {
    const err = configError(() => loadConfig({ LADING_HTTP_TLS_CERTIFICATE: '/etc/lading/tls.crt' }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe('invalid configuration at http.tls.key: http.tls.certificate and http.tls.key go together (environment variable LADING_HTTP_TLS_KEY)');
  });

  it('refuses a key without its certificate, naming http.tls.certificate', () => {
    const err = configError(() => parseConfig({ http: { tls: { key: '/etc/lading/tls.key' } } }));
    expect(err.message).toBe('invalid configuration at http.tls.certificate: http.tls.certificate and http.tls.key go together (environment variable LADING_HTTP_TLS_CERTIFICATE)');
  });

  it('refuses an unknown key under http.tls, naming it', () => {
    expect(configError(() => parseConfig({ http: { tls: { cert: '/x' } } })).message).toContain('http.tls.cert');
  });
});

describe('durationMs', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['24h', 86_400_000],
    ['30d', 2_592_000_000],
    ['0s', 0],
  ])('converts %s to %i ms', (text, ms) => {
    expect(durationMs(text)).toBe(ms);
  });

  it.each(['', '5', '1.5h', '10w', '1.5d', '-1s', '5 m', 'm'])('refuses %j', (text) => {
    expect(() => durationMs(text)).toThrow(/not a duration/);
  });
});

describe('configuration errors', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-config-errors-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('reports every bad value at once, each naming its key and the variable that sets it', () => {
    const err = configError(() => loadConfig({ LADING_REGISTRY_MAXPAGESIZE: 'abc', LADING_LOG_LEVEL: 'loud', LADING_HTTP_ADDR: 'localhost' }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.problems).toHaveLength(3);
    expect(err.message).toMatch(/^3 configuration problems:\n/);
    expect(err.message).toContain('at registry.maxPageSize: ');
    expect(err.message).toContain('(environment variable LADING_REGISTRY_MAXPAGESIZE)');
    expect(err.message).toContain('at log.level: ');
    expect(err.message).toContain('(environment variable LADING_LOG_LEVEL)');
    expect(err.message).toContain('at http.addr: ');
    expect(err.message).toContain('(environment variable LADING_HTTP_ADDR)');
  });

  it('reports unknown variables together with invalid values', () => {
    const err = configError(() => loadConfig({ LADING_NOPE: '1', LADING_HTTP_PORT: '2', LADING_LOG_LEVEL: 'loud' }));
    expect(err.problems).toEqual([
      'unknown configuration variable LADING_NOPE',
      'unknown configuration variable LADING_HTTP_PORT',
      expect.stringMatching(/^invalid configuration at log\.level: .* \(environment variable LADING_LOG_LEVEL\)$/),
    ]);
  });

  it('names the variable of a whole list when one of its entries is bad', () => {
    const err = configError(() => loadConfig({ LADING_SECRETS_KEY: 'c2hvcnQ=' }));
    expect(err.message).toBe('invalid configuration at secrets.key: the base64 of 32 bytes (openssl rand -base64 32) (environment variable LADING_SECRETS_KEY)');
    const listErr = configError(() => parseConfig({ webhooks: { allowList: ['hooks.internal:99999'] } }));
    expect(listErr.message).toContain('(environment variable LADING_WEBHOOKS_ALLOWLIST)');
  });

  it('names no variable for an unknown key in the file, which no variable could set', async () => {
    const p = path.join(dir, 'typo.yaml');
    await writeFile(p, 'registry:\n  deleteEnabeld: false\nlog:\n  level: loud\n');
    const err = configError(() => loadConfig({ LADING_CONFIG: p }));
    expect(err.problems).toHaveLength(2);
    expect(err.problems.find((line) => line.includes('registry.deleteEnabeld'))).not.toContain('environment variable');
    expect(err.problems.find((line) => line.includes('log.level'))).toContain('(environment variable LADING_LOG_LEVEL)');
  });

  it('names the file, line and column of a YAML syntax error, without the parser stack or source excerpt', async () => {
    const p = path.join(dir, 'broken.yaml');
    await writeFile(p, 'http:\n  addr: 127.0.0.1:5000\nregistry:\n  maxPageSize: [1\nlog:\n  level: info\n');
    const err = configError(() => loadConfig({ LADING_CONFIG: p }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.problems[0]).toMatch(new RegExp(`^configuration file ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+ is not valid YAML: `));
    expect(err.problems[0]).toContain(`${p}:5:1`);
    for (const line of err.problems) expect(line).not.toContain('\n');
    expect(err.message).not.toMatch(/\n\s+at /);
  });
});
