import { parseAllowListEntry } from './allow-list-entry';
import { loadConfig } from './load';

const KEY = Buffer.alloc(32, 7).toString('base64');

describe('a webhooks.allowList entry', () => {
  it.each([
    ['10.0.0.0/8', { kind: 'range', family: 4, address: '10.0.0.0', prefix: 8, port: null }],
    ['10.1.2.3', { kind: 'range', family: 4, address: '10.1.2.3', prefix: 32, port: null }],
    ['10.1.2.3:8080', { kind: 'range', family: 4, address: '10.1.2.3', prefix: 32, port: 8080 }],
    ['10.0.0.0/8:8080', { kind: 'range', family: 4, address: '10.0.0.0', prefix: 8, port: 8080 }],
    ['fd00::/8', { kind: 'range', family: 6, address: 'fd00::', prefix: 8, port: null }],
    ['fd00::1:8443', { kind: 'range', family: 6, address: 'fd00::1:8443', prefix: 128, port: null }],
    ['[fd00::1]:8443', { kind: 'range', family: 6, address: 'fd00::1', prefix: 128, port: 8443 }],
    ['[fd00::]/8:8443', { kind: 'range', family: 6, address: 'fd00::', prefix: 8, port: 8443 }],
    ['Hooks.Internal', { kind: 'host', host: 'hooks.internal', port: null }],
    ['hooks.internal:8443', { kind: 'host', host: 'hooks.internal', port: 8443 }],
    ['0x7f.1', { kind: 'range', family: 4, address: '127.0.0.1', prefix: 32, port: null }],
    ['2130706433:9000', { kind: 'range', family: 4, address: '127.0.0.1', prefix: 32, port: 9000 }],
  ])('parses %s', (entry, parsed) => {
    expect(parseAllowListEntry(entry)).toEqual(parsed);
  });

  it.each(['', 'hooks.internal:', 'hooks.internal:0', 'hooks.internal:65536', 'hooks.internal/8', '10.0.0.0/33', 'fd00::/129', 'http://hooks.internal', 'a b', '[fd00::1]x', 'fd00:::1'])(
    'refuses %j, naming it',
    (entry) => {
      expect(() => parseAllowListEntry(entry)).toThrow(`webhooks.allowList entry ${JSON.stringify(entry)}`);
    },
  );

  it('is validated at start-up: a bad entry stops loadConfig with its key and the entry (it used to be accepted and ignored)', () => {
    expect(() => loadConfig({ LADING_WEBHOOKS_ALLOWLIST: '10.0.0.0/8,hooks.internal:99999' })).toThrow(
      'invalid configuration at webhooks.allowList.1: webhooks.allowList entry "hooks.internal:99999": has a port outside 1-65535',
    );
    expect(loadConfig({ LADING_WEBHOOKS_ALLOWLIST: '10.0.0.0/8,hooks.internal:8443' }).webhooks.allowList).toEqual(['10.0.0.0/8', 'hooks.internal:8443']);
  });
});

describe('secrets.* configuration', () => {
  it('maps LADING_SECRETS_KEY, LADING_SECRETS_KEYFILE and LADING_SECRETS_PREVIOUSKEYS', () => {
    expect(loadConfig({ LADING_SECRETS_KEY: KEY, LADING_SECRETS_PREVIOUSKEYS: `${KEY},${KEY}` }).secrets).toEqual({ key: KEY, previousKeys: [KEY, KEY] });
    expect(loadConfig({ LADING_SECRETS_KEYFILE: '/run/secrets/lading' }).secrets).toEqual({ keyFile: '/run/secrets/lading', previousKeys: [] });
    expect(loadConfig({}).secrets).toEqual({ previousKeys: [] });
  });

  it('refuses a key that is not the base64 of 32 bytes, naming the key', () => {
    expect(() => loadConfig({ LADING_SECRETS_KEY: 'c2hvcnQ=' })).toThrow('invalid configuration at secrets.key: the base64 of 32 bytes');
    expect(() => loadConfig({ LADING_SECRETS_KEY: KEY, LADING_SECRETS_PREVIOUSKEYS: 'nope' })).toThrow('invalid configuration at secrets.previousKeys.0: the base64 of 32 bytes');
  });

  it('refuses key and keyFile together, and previous keys without a current one', () => {
    expect(() => loadConfig({ LADING_SECRETS_KEY: KEY, LADING_SECRETS_KEYFILE: '/k' })).toThrow('invalid configuration at secrets.keyFile: set secrets.key or secrets.keyFile, not both');
    expect(() => loadConfig({ LADING_SECRETS_PREVIOUSKEYS: KEY })).toThrow('invalid configuration at secrets.previousKeys');
  });
});
