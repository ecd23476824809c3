/**
 * Search through the real gateway of an embedded registry: Docker's v1 search and the console's JSON search, over
 * content pushed through the registry API (so the metadata is the one extracted at push), with auth on (each caller
 * sees what it may pull) and off (everyone sees everything).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { parseConfig } from '@lading/config';
import { createLogger } from '@lading/telemetry';
import { TestManifest, imageIndex, imageManifest, makeBlob } from '@lading/testing';
import { EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';

const ROOT = { user: 'root', password: 'root-password-0' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** An embedded registry listening on a port of its own, in a fresh data directory. */
async function startRegistry(auth: boolean): Promise<{ registry: EmbeddedRegistry; server: Server; url: string; dir: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lading-search-'));
  const config = parseConfig({ data: { dir }, auth: { enabled: auth }, admin: ROOT, log: { level: 'silent', access: false } });
  const registry = await createEmbeddedRegistry(config, createLogger({ service: 'test', level: 'silent' }));
  const server = registry.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { registry, server, dir, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function stopRegistry(r: { registry: EmbeddedRegistry; server: Server; dir: string }): Promise<void> {
  await new Promise((resolve) => r.server.close(resolve));
  await r.registry.close();
  await rm(r.dir, { recursive: true, force: true });
}

/** Pushes an image through the API: its config (with `labels`, for `platform`), one layer, the manifest under `tag`. */
async function pushImage(
  url: string,
  auth: string | undefined,
  repo: string,
  tag: string,
  options: { labels?: Record<string, string>; platform?: [string, string]; annotations?: Record<string, string> } = {},
): Promise<TestManifest> {
  const [os, architecture] = options.platform ?? ['linux', 'amd64'];
  const config = makeBlob(JSON.stringify({ architecture, os, config: { Labels: options.labels ?? {} }, rootfs: { type: 'layers', diff_ids: [] }, n: Math.random() }));
  const layer = makeBlob(256);
  for (const blob of [config, layer]) {
    const req = request(url).post(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`).set('Content-Type', 'application/octet-stream');
    if (auth) req.set('Authorization', auth);
    await req.send(blob.data).expect(201);
  }
  const manifest = imageManifest(config, [layer], options.annotations ? { annotations: options.annotations } : {});
  await putManifest(url, auth, repo, tag, manifest);
  return manifest;
}

async function putManifest(url: string, auth: string | undefined, repo: string, reference: string, manifest: TestManifest): Promise<void> {
  const req = request(url).put(`/v2/${repo}/manifests/${reference}`).set('Content-Type', manifest.mediaType);
  if (auth) req.set('Authorization', auth);
  await req.send(manifest.body.toString()).expect(201);
}

describe('search with auth on', () => {
  let r: Awaited<ReturnType<typeof startRegistry>>;
  let rootBearer: string;
  let aliceBearer: string;
  let robotBearer: string;

  async function token(user: string, password: string, scopes: string[] = []): Promise<string> {
    const q = new URLSearchParams({ service: 'lading' });
    for (const s of scopes) q.append('scope', s);
    const res = await request(r.url).get(`/token?${q}`).set('Authorization', basic(user, password)).expect(200);
    return `Bearer ${res.body.token}`;
  }

  const admin = (method: 'post', url: string, body: object) => request(r.url)[method](`/admin/v1${url}`).set('Authorization', basic(ROOT.user, ROOT.password)).send(body);
  const get = (pathAndQuery: string, auth?: string) => {
    const req = request(r.url).get(pathAndQuery);
    return auth ? req.set('Authorization', auth) : req;
  };

  beforeAll(async () => {
    r = await startRegistry(true);
    await admin('post', '/users', { name: 'alice', password: 'alice-password' }).expect(201);
    await admin('post', '/namespaces', { prefix: 'public', public: true }).expect(201);
    await admin('post', '/namespaces', { prefix: 'team' }).expect(201);
    await admin('post', '/namespaces', { prefix: 'secret' }).expect(201);
    await admin('post', '/grants', { prefix: 'team', principal: 'user:alice', role: 'pull' }).expect(201);
    const robot = await admin('post', '/robots', { name: 'builder', expiresIn: '1h' }).expect(201);
    await admin('post', '/grants', { prefix: 'secret', principal: 'robot:builder', role: 'push' }).expect(201);
    const repos = ['public/postgres', 'public/postgres-exporter', 'public/widget', 'public/multi', 'team/postgres-internal', 'secret/postgres'];
    const push = await token(ROOT.user, ROOT.password, repos.map((name) => `repository:${name}:pull,push`));
    await pushImage(r.url, push, 'public/postgres', '16', {
      labels: { 'org.opencontainers.image.description': 'The PostgreSQL database', tier: 'db' },
      platform: ['linux', 'arm64'],
    });
    await pushImage(r.url, push, 'public/postgres-exporter', 'v1', { annotations: { 'org.opencontainers.image.description': 'Prometheus exporter' } });
    await pushImage(r.url, push, 'public/widget', 'postgres-compat');
    const children = [await pushImage(r.url, push, 'public/multi', 'amd'), await pushImage(r.url, push, 'public/multi', 'arm')];
    await putManifest(r.url, push, 'public/multi', 'latest', imageIndex(children, { annotations: { 'org.opencontainers.image.title': 'Multi' } }));
    await pushImage(r.url, push, 'team/postgres-internal', 'v1');
    await pushImage(r.url, push, 'secret/postgres', 'v1');
    rootBearer = await token(ROOT.user, ROOT.password);
    aliceBearer = await token('alice', 'alice-password');
    robotBearer = await token('robot$builder', robot.body.secret);
  });
  afterAll(async () => stopRegistry(r));

  it('answers Docker\'s v1 search anonymously, in Docker Hub\'s shape, with the public repositories only, ranked', async () => {
    const res = await get('/v1/search?q=postgres&n=25').expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({
      num_results: 3,
      num_pages: 1,
      page: 1,
      page_size: 25,
      query: 'postgres',
      results: [
        { name: 'public/postgres', description: 'The PostgreSQL database', star_count: 0, is_official: false, is_automated: false },
        { name: 'public/postgres-exporter', description: 'Prometheus exporter', star_count: 0, is_official: false, is_automated: false },
        { name: 'public/widget', description: '', star_count: 0, is_official: false, is_automated: false },
      ],
    });
  });

  it('answers Docker\'s ping before a search without a token', async () => {
    expect((await get('/v1/_ping').expect(200)).body).toEqual({});
  });

  it('lists what a signed-in caller (a user, a robot) may pull: its grants and the public namespaces; an admin everything', async () => {
    const names = async (auth: string) => (await get('/v1/search?q=postgres', auth).expect(200)).body.results.map((x: { name: string }) => x.name);
    expect(await names(aliceBearer)).toEqual(['public/postgres', 'public/postgres-exporter', 'team/postgres-internal', 'public/widget']);
    expect(await names(rootBearer)).toEqual(['public/postgres', 'secret/postgres', 'public/postgres-exporter', 'team/postgres-internal', 'public/widget']);
    expect(await names(robotBearer)).toEqual(['public/postgres', 'secret/postgres', 'public/postgres-exporter', 'public/widget']);
  });

  it('refuses a token that does not verify instead of treating it as anonymous', async () => {
    const res = await get('/v1/search?q=postgres', 'Bearer not.a.token').expect(401);
    expect(res.body.errors[0].code).toBe('UNAUTHORIZED');
  });

  it('pages Docker\'s search with n and page', async () => {
    const second = (await get('/v1/search?q=postgres&n=2&page=2').expect(200)).body;
    expect(second).toMatchObject({ num_results: 3, num_pages: 2, page: 2, page_size: 2 });
    expect(second.results.map((x: { name: string }) => x.name)).toEqual(['public/widget']);
  });

  it('answers the console\'s search with how each repository matched, its metadata and matching tags', async () => {
    const body = (await get('/api/v1/search?q=postgres').expect(200)).body;
    expect(body).toMatchObject({ query: 'postgres', page: 1, pageSize: 25, total: 3, pages: 1, capped: false });
    expect(body.results[0]).toMatchObject({ repository: 'public/postgres', namespace: 'public', match: 'exact', description: 'The PostgreSQL database', tags: ['16'] });
    expect(body.results[0].pushedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(body.results[2]).toMatchObject({ repository: 'public/widget', match: 'tag', tags: ['postgres-compat'] });
  });

  it('filters the console\'s search by platform (of images and of indexes\' children), config label, namespace and push time', async () => {
    const names = async (query: string, auth?: string) => (await get(`/api/v1/search?${query}`, auth).expect(200)).body.results.map((x: { repository: string }) => x.repository);
    expect(await names('platform=linux/arm64')).toEqual(['public/multi', 'public/postgres']);
    expect(await names('label=tier%3Ddb')).toEqual(['public/postgres']);
    expect(await names('namespace=team', aliceBearer)).toEqual(['team/postgres-internal']);
    expect(await names('namespace=team')).toEqual([]);
    expect(await names('q=multi&mediaType=application/vnd.oci.image.index.v1%2Bjson')).toEqual(['public/multi']);
    expect(await names('pushedSince=2999-01-01')).toEqual([]);
    const multi = (await get('/api/v1/search?q=multi').expect(200)).body.results[0];
    expect(multi).toMatchObject({ repository: 'public/multi', title: 'Multi' });
  });

  it.each([
    ['/v1/search?q=postgres&n=abc', 'PAGINATION_NUMBER_INVALID', '/v1/search?q=postgres&n=abc'],
    ['/v1/search?q=postgres&n=0', 'PAGINATION_NUMBER_INVALID', '/v1/search?q=postgres&n=0'],
    ['/v1/search?q=postgres&page=0', 'PAGINATION_NUMBER_INVALID', '/v1/search?q=postgres&page=0'],
    ['/v1/search?q=postgres&page=-1', 'PAGINATION_NUMBER_INVALID', '/v1/search?q=postgres&page=-1'],
    ['/v1/search?q=postgres&page=99999999999999999999', 'PAGINATION_NUMBER_INVALID', '/v1/search?q=postgres&page=99999999999999999999'],
    ['/v1/search', 'SEARCH_INVALID', '/v1/search'],
    ['/v1/search?q=<256 characters>', 'SEARCH_INVALID', `/v1/search?q=${'a'.repeat(256)}`],
    ['/v1/search?q=<10,000 characters>', 'SEARCH_INVALID', `/v1/search?q=${'a'.repeat(10_000)}`],
    ['/v1/search?q=a&q=b', 'SEARCH_INVALID', '/v1/search?q=a&q=b'],
    ['/v1/search?q=%00', 'SEARCH_INVALID', '/v1/search?q=%00'],
    ['/api/v1/search?pushedSince=yesterday', 'SEARCH_INVALID', '/api/v1/search?pushedSince=yesterday'],
    ['/api/v1/search?label=novalue', 'SEARCH_INVALID', '/api/v1/search?label=novalue'],
    ['/api/v1/search?platform=linux', 'SEARCH_INVALID', '/api/v1/search?platform=linux'],
    ['/api/v1/search?mediaType=not-a-type', 'SEARCH_INVALID', '/api/v1/search?mediaType=not-a-type'],
    ['/api/v1/search?namespace=Bad..Name', 'NAME_INVALID', '/api/v1/search?namespace=Bad..Name'],
  ])('refuses %s with a 400 %s in the error envelope', async (_name, code, url) => {
    const res = await get(url).expect(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.errors[0].code).toBe(code);
  });

  it('clamps a page size past the maximum to it, as Docker Hub does', async () => {
    expect((await get('/v1/search?q=postgres&n=1000').expect(200)).body.page_size).toBe(100);
  });
});

describe('search with auth off', () => {
  let r: Awaited<ReturnType<typeof startRegistry>>;
  beforeAll(async () => {
    r = await startRegistry(false);
    await pushImage(r.url, undefined, 'anyone/tool', 'v1');
    await pushImage(r.url, undefined, 'other/tool', 'v1');
  });
  afterAll(async () => stopRegistry(r));

  it('lists every repository to everyone', async () => {
    const body = (await request(r.url).get('/v1/search?q=tool').expect(200)).body;
    expect(body.results.map((x: { name: string }) => x.name)).toEqual(['anyone/tool', 'other/tool']);
  });
});
