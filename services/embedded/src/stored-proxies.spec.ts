/**
 * Pull-through caches added and removed through the admin API while the embedded registry runs, against a real CNCF
 * Distribution v3 with Basic auth on loopback: no restart between the change and its effect. The upstream password
 * goes in through the API and is then only ever sealed in the database: never in an answer or a log line.
 */
import { Writable } from 'node:stream';
import { SEALED_PREFIX, secretKeyId } from '@lading/access';
import { type RegistryClient, createRegistryClient } from '@lading/client';
import * as meta from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { type RunningDistribution, type TestBlob, imageManifest, makeBlob, startDistribution } from '@lading/testing';
import { type ServedRegistry, pushImage, readAll, serveEmbeddedRegistry } from '../test/served-registry';
import type { EmbeddedRegistry } from './embedded-registry';

const ROOT = { user: 'root', password: 'root-password-1' };
const KEY = Buffer.alloc(32, 41);
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('proxy rules managed through the admin API, live in the embedded registry', () => {
  let distribution: RunningDistribution;
  let upstream: RegistryClient;
  let served: ServedRegistry;
  let registry: EmbeddedRegistry;
  let url: string;
  let client: RegistryClient;
  let password: string;
  const lines: string[] = [];

  const config = makeBlob('{"architecture":"amd64","os":"linux"}');
  const layer = makeBlob(256 * 1024 + 3);
  const image = imageManifest(config, [layer]);

  async function adminCall(method: string, route: string, body?: unknown): Promise<{ status: number; text: string; json: unknown }> {
    const res = await fetch(`${url}/admin/v1${route}`, {
      method,
      headers: { authorization: basic(ROOT.user, ROOT.password), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, json: text ? JSON.parse(text) : undefined };
  }

  const pushV1 = (to: RegistryClient, repository: string, blobs: TestBlob[]) => pushImage(to, repository, 'v1', image, blobs);

  beforeAll(async () => {
    distribution = await startDistribution({ basicAuth: true });
    password = distribution.credentials!.password;
    upstream = createRegistryClient({ url: distribution.url, credentials: distribution.credentials! });
    expect(await pushV1(upstream, 'library/app', [config, layer])).toBe(201);
    const logger = createLogger({ service: 'test', level: 'debug', destination: new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }) });
    served = await serveEmbeddedRegistry({ admin: ROOT, secrets: { key: KEY.toString('base64') }, mirror: { namespace: 'cache/dist' }, gc: { enabled: false }, log: { level: 'debug', access: true } }, { logger });
    ({ registry, url, client } = served);
  }, 15 * 60_000);

  afterAll(async () => {
    await served?.close();
    await upstream?.close();
    await distribution?.remove();
  });

  it('serves a proxy added through the API from its upstream at once, and takes pushes into the namespace again once it is removed', async () => {
    // No rule yet: the mirror namespace names none (start-up said so), so un-prefixed pulls are served as written.
    expect(lines.join('')).toContain('mirror.namespace names no proxy rule');
    expect((await client.getManifest('cache/dist/library/app', 'v1')).status).toBe(404);
    expect((await client.getManifest('library/app', 'v1')).status).toBe(404);

    const created = await adminCall('PUT', '/proxies/cache/dist', { upstream: distribution.url, username: 'docker', password, tagTtl: '1m' });
    expect(created.status).toBe(201);

    const manifest = await client.getManifest('cache/dist/library/app', 'v1');
    expect(manifest.status).toBe(200);
    expect(manifest.body.equals(image.body)).toBe(true);
    for (const blob of [config, layer]) expect((await readAll(await client.openBlob('cache/dist/library/app', blob.digest))).equals(blob.data)).toBe(true);
    // The mirror follows the stored rule too.
    expect((await client.getManifest('library/app', 'v1')).status).toBe(200);
    // A proxy namespace takes no pushes.
    const refused = await client.putManifest('cache/dist/mine', 'v1', { mediaType: image.mediaType, body: image.body });
    expect(`${refused.status} ${refused.body.toString()}`).toMatch(/^403 .*DENIED/);

    expect((await adminCall('DELETE', '/proxies/cache/dist')).status).toBe(204);
    // What the cache fetched stays, as ordinary content; the namespace takes pushes again.
    const kept = await client.getManifest('cache/dist/library/app', 'v1');
    expect(kept.status).toBe(200);
    expect(kept.body.equals(image.body)).toBe(true);
    expect(await pushV1(client, 'cache/dist/mine', [config, layer])).toBe(201);
    expect((await client.getManifest('cache/dist/mine', 'v1')).status).toBe(200);
    // And the mirror is off again.
    expect((await client.getManifest('library/app', 'v1')).status).toBe(404);
  });

  it('keeps the upstream password sealed at rest, and out of every API answer and log line', async () => {
    const created = await adminCall('PUT', '/proxies/sealed', { upstream: distribution.url, username: 'docker', password });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ namespace: 'sealed', username: 'docker', passwordSet: true, source: 'stored' });
    expect((await client.getManifest('sealed/library/app', 'v1')).status).toBe(200);
    const listed = await adminCall('GET', '/proxies');
    expect(listed.status).toBe(200);

    const rows = await meta.listStoredProxyRules(registry.db);
    expect(rows.map((r) => r.namespace)).toEqual(['sealed']);
    expect(rows[0].storedPassword?.startsWith(`${SEALED_PREFIX}${secretKeyId(KEY)}:`)).toBe(true);

    const basicOfUpstream = Buffer.from(`docker:${password}`).toString('base64').replace(/=+$/, '');
    for (const text of [rows[0].storedPassword ?? '', created.text, listed.text, lines.join('')]) {
      expect(text).not.toContain(password);
      expect(text).not.toContain(basicOfUpstream);
    }
    expect(lines.join('')).toContain('proxy rule created');
  });

  it('evicts by a stored rule\'s evictAfter, and never once the rule is removed', async () => {
    expect((await adminCall('PUT', '/proxies/evicting', { upstream: distribution.url, username: 'docker', password })).status).toBe(201);
    expect((await client.getManifest('evicting/library/app', 'v1')).status).toBe(200);
    await registry.flushPulls();
    // Pulled an hour ago, as far as eviction can tell (no clock is waited on).
    const age = async () =>
      registry.db.query(`UPDATE manifests SET created_at = now() - interval '1 hour', last_pulled_at = now() - interval '1 hour' WHERE repository_id = (SELECT id FROM repositories WHERE name = $1)`, [
        'evicting/library/app',
      ]);
    const held = async () =>
      (await registry.db.query(`SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1`, ['evicting/library/app'])).rows.length;
    await age();
    // The rule has no evictAfter yet: nothing goes.
    await registry.gc.sweep();
    expect(await held()).toBe(1);

    // Removed, then the content is ordinary: a sweep leaves it.
    expect((await adminCall('DELETE', '/proxies/evicting')).status).toBe(204);
    await registry.gc.sweep();
    expect(await held()).toBe(1);

    // Back with evictAfter 30m: the collector follows the stored rule at once.
    expect((await adminCall('PUT', '/proxies/evicting', { upstream: distribution.url, username: 'docker', password, evictAfter: '30m' })).status).toBe(201);
    await registry.gc.sweep();
    expect(await held()).toBe(0);
  });
});
