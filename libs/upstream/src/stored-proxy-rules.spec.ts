/**
 * The live proxy rules over a real PGlite database: config rules and stored ones combined; the client of a changed
 * or removed rule is closed and built again; another process's change is seen on the next poll (the poll's sleep
 * driven by hand, so nothing waits on a clock); a stored password that no key opens keeps the rules in force.
 */
import { SEALED_PREFIX, createSecretCipher, secretKeyId } from '@lading/access';
import * as meta from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { TestDeps, createTestDeps, manualSleep } from '@lading/testing';
import { type UpstreamFactory, createProxyRules } from './proxy-rules';
import { type LiveProxyRules, ProxyRuleError, createStoredProxyRules, putProxyRule, removeProxyRule, sealStoredProxyPasswords } from './stored-proxy-rules';
import { createUpstreamRegistry } from './upstream-registry';

const silent = createLogger({ service: 'test', level: 'silent' });

/** The real client factory, noting every client it made and whether it was closed. */
function countingFactory(): { makeUpstream: UpstreamFactory; made: Array<{ url: string; password?: string; closed: boolean }> } {
  const made: Array<{ url: string; password?: string; closed: boolean }> = [];
  return {
    made,
    makeUpstream: (deps) => {
      const client = createUpstreamRegistry(deps);
      const entry = { url: deps.url, password: deps.password, closed: false };
      made.push(entry);
      return {
        ...client,
        async close() {
          entry.closed = true;
          await client.close();
        },
      };
    },
  };
}

describe('proxy rules', () => {
  it('closes the client of a changed or removed rule and builds a new one on next use; an unchanged rule keeps its client', async () => {
    const { makeUpstream, made } = countingFactory();
    const rules = createProxyRules([{ namespace: 'hub', upstream: 'https://a.example', tagTtl: '10m' }], makeUpstream);
    const first = rules.match('hub/library/alpine')!.upstream;
    expect(rules.match('hub/library/busybox')!.upstream).toBe(first);
    await rules.update([{ namespace: 'hub', upstream: 'https://a.example', tagTtl: '1m' }]);
    expect(rules.match('hub/x')!.upstream).toBe(first);
    expect(rules.match('hub/x')!.tagTtlMs).toBe(60_000);
    await rules.update([{ namespace: 'hub', upstream: 'https://a.example', username: 'u', password: 'p2', tagTtl: '1m' }]);
    expect(made[0].closed).toBe(true);
    const second = rules.match('hub/x')!.upstream;
    expect(second).not.toBe(first);
    expect(made[1]).toMatchObject({ url: 'https://a.example', password: 'p2', closed: false });
    await rules.update([]);
    expect(made[1].closed).toBe(true);
    expect(rules.match('hub/x')).toBeNull();
    expect(rules.namespaceOf('hub/x')).toBeNull();
    await rules.close();
  });
});

describe('live proxy rules: config and stored', () => {
  let deps: TestDeps;
  const cipher = createSecretCipher({ current: Buffer.alloc(32, 3) });
  const live: LiveProxyRules[] = [];

  beforeEach(async () => {
    deps = await createTestDeps({ proxies: [{ namespace: 'hub', upstream: 'https://registry-1.docker.io' }] });
  });
  afterEach(async () => {
    for (const rules of live.splice(0)) await rules.close();
    await deps.close();
  });

  it('serves config and stored rules, and sees another process\'s change on its next poll', async () => {
    const polls = manualSleep();
    const { makeUpstream, made } = countingFactory();
    const other = await createStoredProxyRules({ db: deps.db, config: deps.config, cipher, logger: silent, sleep: polls.sleep, makeUpstream });
    live.push(other);
    expect(other.rules().map((r) => r.namespace)).toEqual(['hub']);

    // "This process" stores a rule; the other one has not polled yet.
    await putProxyRule(deps.db, { config: deps.config, cipher }, 'ghcr', { upstream: 'https://ghcr.io', username: 'bot', password: 'ghcr-secret' });
    expect(other.namespaceOf('ghcr/org/app')).toBeNull();
    await polls.step();
    expect(other.namespaceOf('ghcr/org/app')).toEqual({ namespace: 'ghcr', upstream: 'https://ghcr.io' });
    expect(other.match('ghcr/org/app')).toMatchObject({ namespace: 'ghcr', upstreamRepository: 'org/app' });
    expect(made.at(-1)).toMatchObject({ url: 'https://ghcr.io', password: 'ghcr-secret', closed: false });

    await removeProxyRule(deps.db, deps.config, 'ghcr');
    await polls.step();
    expect(other.namespaceOf('ghcr/org/app')).toBeNull();
    expect(made.at(-1)?.closed).toBe(true);
    expect(other.namespaceOf('hub/library/alpine')?.namespace).toBe('hub');
  });

  it('refuses to store a config rule, and keeps the rules in force when a stored password cannot be opened', async () => {
    await expect(putProxyRule(deps.db, { config: deps.config, cipher }, 'hub', { upstream: 'https://x.example' })).rejects.toThrow(ProxyRuleError);
    await putProxyRule(deps.db, { config: deps.config, cipher }, 'ghcr', { upstream: 'https://ghcr.io', username: 'bot', password: 'ghcr-secret' });
    const rules = await createStoredProxyRules({ db: deps.db, config: deps.config, cipher, logger: silent, sleep: manualSleep().sleep });
    live.push(rules);
    // Sealed under a key this process does not hold: the refresh fails, the rules in force stay.
    const other = createSecretCipher({ current: Buffer.alloc(32, 4) });
    await deps.db.query(`UPDATE proxy_rules SET password = $1`, [other.seal('x', 'proxy ghcr')]);
    await expect(rules.refresh()).rejects.toThrow(/proxy ghcr/);
    expect(rules.namespaceOf('ghcr/a')?.namespace).toBe('ghcr');
    await expect(createStoredProxyRules({ db: deps.db, config: deps.config, cipher, logger: silent })).rejects.toThrow(/proxy ghcr/);
    expect((await meta.listStoredProxyRules(deps.db)).map((r) => r.namespace)).toEqual(['ghcr']);
  });

  it('seals at start-up a password stored plain (no key then) or under a previous key, under the current key', async () => {
    const plain = createSecretCipher({ current: null });
    await putProxyRule(deps.db, { config: deps.config, cipher: plain }, 'ghcr', { upstream: 'https://ghcr.io', username: 'bot', password: 'ghcr-secret' });
    expect((await meta.listStoredProxyRules(deps.db))[0].storedPassword).toBe('ghcr-secret');
    expect(await sealStoredProxyPasswords(deps.db, cipher)).toBe(1);
    const sealed = (await meta.listStoredProxyRules(deps.db))[0].storedPassword!;
    expect(sealed.startsWith(`${SEALED_PREFIX}${secretKeyId(Buffer.alloc(32, 3))}:`)).toBe(true);
    expect(await sealStoredProxyPasswords(deps.db, cipher)).toBe(0);
    const rotated = createSecretCipher({ current: Buffer.alloc(32, 5), previous: [Buffer.alloc(32, 3)] });
    expect(await sealStoredProxyPasswords(deps.db, rotated)).toBe(1);
    const rules = await createStoredProxyRules({ db: deps.db, config: deps.config, cipher: rotated, logger: silent, sleep: manualSleep().sleep });
    live.push(rules);
    expect(rules.rules().find((r) => r.namespace === 'ghcr')?.password).toBe('ghcr-secret');
  });
});
