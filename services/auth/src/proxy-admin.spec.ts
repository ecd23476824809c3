/**
 * The admin API's pull-through caches (`/admin/v1/proxies`), against a real auth service on PGlite with the live
 * proxy rules of @lading/upstream refreshed by the API: stored rules are created, listed without their password,
 * replaced and deleted; bad input is a 400 that stores nothing; config rules are read-only; only admins may call it.
 */
import { Writable } from 'node:stream';
import request from 'supertest';
import type { Express } from 'express';
import { SEALED_PREFIX, hashPassword, secretCipherFromConfig } from '@lading/access';
import * as meta from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { TestDeps, createTestDeps } from '@lading/testing';
import { type LiveProxyRules, createStoredProxyRules } from '@lading/upstream';
import { createAuthService } from './auth-service';

const ROOT = { user: 'root', password: 'root-password-1' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const KEY = Buffer.alloc(32, 7).toString('base64');
const UPSTREAM_PASSWORD = 'upstream-pa55word-never-shown';
const CONFIG_PASSWORD = 'config-pa55word-never-shown';

describe('admin API: proxies', () => {
  let deps: TestDeps;
  let app: Express;
  let pat: string;
  let live: LiveProxyRules;
  const lines: string[] = [];

  function admin(method: 'get' | 'put' | 'delete', path: string, body?: unknown) {
    const req = request(app)[method](`/admin/v1${path}`).set('Authorization', basic(ROOT.user, pat));
    return body === undefined ? req : req.send(body as object);
  }

  beforeAll(async () => {
    deps = await createTestDeps({
      auth: { enabled: true, loginFailureLimit: 1000 },
      secrets: { key: KEY },
      proxies: [{ namespace: 'hub', upstream: 'https://registry-1.docker.io', username: 'cfg-user', password: CONFIG_PASSWORD }],
    });
    const logger = createLogger({ service: 'test', level: 'debug', destination: new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }) });
    const cipher = secretCipherFromConfig(deps.config.secrets);
    live = await createStoredProxyRules({ db: deps.db, config: deps.config, cipher, logger });
    app = createAuthService({ db: deps.db, config: deps.config, logger, secrets: cipher, proxyRulesChanged: () => live.refresh() }).app;
    await meta.createUser(deps.db, ROOT.user, await hashPassword(ROOT.password), true);
    await meta.createUser(deps.db, 'alice', await hashPassword('alice-password'), false);
    const created = await request(app).post(`/admin/v1/users/${ROOT.user}/tokens`).set('Authorization', basic(ROOT.user, ROOT.password)).send({ name: 'cli' });
    expect(created.status).toBe(201);
    pat = created.body.token;
  });

  afterAll(async () => {
    await live?.close();
    await deps?.close();
  });

  it('creates, lists (never a password), replaces and deletes a stored rule, which this process serves at once', async () => {
    const created = await admin('put', '/proxies/cache/ghcr', { upstream: 'https://ghcr.io', username: 'bot', password: UPSTREAM_PASSWORD, evictAfter: '30d' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ namespace: 'cache/ghcr', upstream: 'https://ghcr.io', username: 'bot', passwordSet: true, tagTtl: '10m', evictAfter: '30d', source: 'stored' });
    expect(live.namespaceOf('cache/ghcr/org/app')).toEqual({ namespace: 'cache/ghcr', upstream: 'https://ghcr.io' });
    expect(live.rules().find((r) => r.namespace === 'cache/ghcr')?.password).toBe(UPSTREAM_PASSWORD);

    const listed = await admin('get', '/proxies').expect(200);
    expect(listed.body.proxies).toEqual([
      { namespace: 'hub', upstream: 'https://registry-1.docker.io', username: 'cfg-user', passwordSet: true, tagTtl: '10m', source: 'config' },
      expect.objectContaining({ namespace: 'cache/ghcr', passwordSet: true, source: 'stored', createdAt: expect.any(String), updatedAt: expect.any(String) }),
    ]);
    expect(listed.text).not.toContain(UPSTREAM_PASSWORD);
    expect(listed.text).not.toContain(CONFIG_PASSWORD);
    expect(listed.text).not.toContain('"password"');

    // Sealed at rest: the row holds no plain password, and is bound to its namespace.
    const [row] = await meta.listStoredProxyRules(deps.db);
    expect(row.storedPassword?.startsWith(SEALED_PREFIX)).toBe(true);
    expect(row.storedPassword).not.toContain(UPSTREAM_PASSWORD);

    const replaced = await admin('put', '/proxies/cache/ghcr', { upstream: 'http://127.0.0.1:5999', tagTtl: '30s' });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ namespace: 'cache/ghcr', upstream: 'http://127.0.0.1:5999', passwordSet: false, tagTtl: '30s', source: 'stored' });
    expect(replaced.body.username).toBeUndefined();
    expect(live.match('cache/ghcr/org/app')).toMatchObject({ upstreamRepository: 'org/app', tagTtlMs: 30_000 });

    await admin('delete', '/proxies/cache/ghcr').expect(204);
    expect(live.namespaceOf('cache/ghcr/org/app')).toBeNull();
    expect((await admin('get', '/proxies').expect(200)).body.proxies.map((p: { namespace: string }) => p.namespace)).toEqual(['hub']);
    const again = await admin('delete', '/proxies/cache/ghcr');
    expect(again.status).toBe(404);
    expect(again.body.errors[0].message).toBe('no stored proxy cache/ghcr');

    const logged = lines.join('');
    expect(logged).toContain('proxy rule created');
    expect(logged).not.toContain(UPSTREAM_PASSWORD);
    expect(logged).not.toContain(CONFIG_PASSWORD);
  });

  it.each<[string, string, unknown, RegExp]>([
    ['a non-http upstream', 'mirror', { upstream: 'ftp://example.com' }, /upstream: an http:\/\/ or https:\/\/ URL/],
    ['an upstream with a path', 'mirror', { upstream: 'https://example.com/v2/x' }, /upstream: a base URL without path, query or credentials/],
    ['an upstream with a query', 'mirror', { upstream: 'https://example.com/?ns=x' }, /without path, query or credentials/],
    ['credentials in the upstream', 'mirror', { upstream: 'https://u:p@example.com' }, /without path, query or credentials/],
    ['no upstream', 'mirror', {}, /^upstream: /],
    ['a username without a password', 'mirror', { upstream: 'https://example.com', username: 'u' }, /password: username and password go together/],
    ['a password without a username', 'mirror', { upstream: 'https://example.com', password: 'p' }, /username and password go together/],
    ['a tagTtl that is no duration', 'mirror', { upstream: 'https://example.com', tagTtl: '10 minutes' }, /tagTtl: a duration/],
    ['an evictAfter that is no duration', 'mirror', { upstream: 'https://example.com', evictAfter: 30 }, /evictAfter: /],
    ['an unknown key', 'mirror', { upstream: 'https://example.com', upstreams: 'x' }, /upstreams/],
    ['a body that is no object', 'mirror', ['https://example.com'], /the body must be a JSON object/],
    ['a body naming another namespace', 'mirror', { namespace: 'other', upstream: 'https://example.com' }, /names another namespace than the path/],
    ['a namespace that is no repository-name prefix', 'Mirror', { upstream: 'https://example.com' }, /^namespace: a repository-name prefix/],
    ['a namespace ending in a slash', 'mirror/', { upstream: 'https://example.com' }, /^namespace: /],
    ['a namespace nested in a config rule', 'hub/library', { upstream: 'https://example.com' }, /namespace hub\/library is nested in the proxied namespace hub/],
    ['a namespace nested in a stored rule', 'stored/inner', { upstream: 'https://example.com' }, /namespace stored\/inner is nested in the proxied namespace stored/],
    ['a namespace holding a stored rule', 'deep', { upstream: 'https://example.com' }, /namespace deep holds the proxied namespace deep\/er/],
  ])('refuses %s with 400 and stores nothing', async (_what, namespace, body, message) => {
    await admin('put', '/proxies/stored', { upstream: 'https://stored.example' });
    await admin('put', '/proxies/deep/er', { upstream: 'https://deep.example' });
    const before = await meta.listStoredProxyRules(deps.db);
    const res = await admin('put', `/proxies/${namespace}`, body);
    expect(`${res.status} ${res.body.errors?.[0]?.code}`).toBe('400 UNSUPPORTED');
    expect(res.body.errors[0].message).toMatch(message);
    expect(await meta.listStoredProxyRules(deps.db)).toEqual(before);
    expect(live.namespaceOf(`${namespace}/x`)?.namespace ?? null).not.toBe(namespace);
  });

  it('refuses to change or delete a config rule through the API (409) and leaves it in force', async () => {
    const put = await admin('put', '/proxies/hub', { upstream: 'https://elsewhere.example' });
    expect(put.status).toBe(409);
    expect(put.body.errors[0].message).toBe('the proxy hub comes from the configuration file (proxies); change it there, not through the admin API');
    const del = await admin('delete', '/proxies/hub');
    expect(del.status).toBe(409);
    expect(live.namespaceOf('hub/library/alpine')).toEqual({ namespace: 'hub', upstream: 'https://registry-1.docker.io' });
    expect((await meta.listStoredProxyRules(deps.db)).some((r) => r.namespace === 'hub')).toBe(false);
  });

  it('answers only admins: 401 without credentials, 403 for a user who is not an admin', async () => {
    const before = await meta.listStoredProxyRules(deps.db);
    const anonymous = await request(app).put('/admin/v1/proxies/anon').send({ upstream: 'https://example.com' });
    expect(anonymous.status).toBe(401);
    const alice = await request(app).put('/admin/v1/proxies/alice').set('Authorization', basic('alice', 'alice-password')).send({ upstream: 'https://example.com' });
    expect(`${alice.status} ${alice.body.errors[0].code}`).toBe('403 DENIED');
    expect((await request(app).get('/admin/v1/proxies').set('Authorization', basic('alice', 'alice-password'))).status).toBe(403);
    expect((await request(app).delete('/admin/v1/proxies/stored').set('Authorization', basic('alice', 'alice-password'))).status).toBe(403);
    expect(await meta.listStoredProxyRules(deps.db)).toEqual(before);
  });
});
