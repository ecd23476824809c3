import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { parseChallenge } from './challenge';
import { RegistryClient, RegistryError, createRegistryClient, expectAnswer } from './registry-client';

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** What the fake server saw of one request. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

type Handler = (req: Seen, res: ServerResponse) => void;

/** A loopback server answering with `handler`, recording every request. */
async function serve(handler: Handler): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
    seen.push(request);
    handler(request, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function reply(res: ServerResponse, status: number, body: string | Buffer = '', headers: Record<string, string> = {}): void {
  res.writeHead(status, headers);
  res.end(body);
}

describe('parseChallenge', () => {
  it('reads the scheme as sent and the quoted parameters', () => {
    expect(parseChallenge('Bearer realm="http://r/token",service="lading",scope="repository:a/b:pull,push"')).toEqual({
      scheme: 'Bearer',
      params: { realm: 'http://r/token', service: 'lading', scope: 'repository:a/b:pull,push' },
    });
    expect(parseChallenge('Basic realm="lading"')).toEqual({ scheme: 'Basic', params: { realm: 'lading' } });
    expect(parseChallenge(undefined)).toBeNull();
    expect(parseChallenge('')).toBeNull();
  });
});

describe('the registry client', () => {
  const clients: RegistryClient[] = [];
  const servers: Array<{ close(): Promise<void> }> = [];
  const client = (options: Parameters<typeof createRegistryClient>[0]) => {
    const made = createRegistryClient(options);
    clients.push(made);
    return made;
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const s of servers.splice(0)) await s.close();
  });

  it('answers a Bearer challenge with Basic credentials at the realm, and keeps the token per repository', async () => {
    let tokens = 0;
    const registry = await serve((req, res) => {
      if (req.url.startsWith('/token')) {
        tokens++;
        const query = new URL(req.url, 'http://x').searchParams;
        return reply(res, 200, JSON.stringify({ token: `t-${query.get('scope')}-${req.headers.authorization}` }));
      }
      const repository = /^\/v2\/(.+?)\/manifests\//.exec(req.url)?.[1];
      if (req.headers.authorization === `Bearer t-repository:${repository}:pull-Basic ${Buffer.from('robot:secret').toString('base64')}`) return reply(res, 200, '{}');
      reply(res, 401, '{"errors":[{"code":"UNAUTHORIZED"}]}', {
        'www-authenticate': `Bearer realm="${registryUrl}/token",service="lading",scope="repository:${repository}:pull"`,
      });
    });
    servers.push(registry);
    const registryUrl = registry.url;
    const api = client({ url: `${registry.url}/`, credentials: { username: 'robot', password: 'secret' } });

    for (let i = 0; i < 3; i++) expect((await api.getManifest('team/app', 'v1')).status).toBe(200);
    expect((await api.getManifest('team/other', 'v1')).status).toBe(200);
    expect(tokens).toBe(2);
    expect(registry.seen.find((r) => r.url.startsWith('/token'))?.url).toBe('/token?service=lading&scope=repository%3Ateam%2Fapp%3Apull');
    expect(api.url).toBe(registry.url);
    expect(api.host).toBe(new URL(registry.url).host);

    const anonymous = client({ url: registry.url });
    const refused = await anonymous.getManifest('team/app', 'v1');
    expect(refused).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    expect(() => expectAnswer(refused, 200, 'GET manifest')).toThrow(RegistryError);
    expect(() => expectAnswer(refused, [200, 404], 'GET manifest')).toThrow('GET manifest answered 401 UNAUTHORIZED');
  });

  it('follows a blob redirect, without the registry credentials when it leaves the origin', async () => {
    const data = Buffer.from('layer bytes');
    const store = await serve((_req, res) => reply(res, 200, data));
    servers.push(store);
    const registry = await serve((req, res) => {
      if (!req.headers.authorization) return reply(res, 401, '', { 'www-authenticate': 'Basic realm="lading"' });
      if (req.url.includes('/blobs/')) return reply(res, 307, '', { location: `${store.url}/object?signature=s` });
      reply(res, 404);
    });
    servers.push(registry);
    const api = client({ url: registry.url, credentials: { username: 'u', password: 'p' }, headers: { traceparent: '00-abc-def-01' } });

    expect(await api.readBlob('team/app', sha256(data), 1024)).toEqual(data);
    expect(store.seen[0].headers.authorization).toBeUndefined();
    expect(store.seen[0].headers.traceparent).toBe('00-abc-def-01');
    expect(registry.seen.at(-1)?.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    // Redirects of other methods, or when asked not to, are the caller's.
    expect((await api.send('GET', `/v2/team/app/blobs/${sha256(data)}`, { redirect: 'manual' })).status).toBe(307);
    await expect(api.readBlob('team/app', sha256(data), 4)).rejects.toThrow('is larger than 4 bytes');
  });

  it('checks digests: a blob stream fails at its end, a manifest by digest is refused, unless told not to verify', async () => {
    const registry = await serve((req, res) => {
      if (req.url.includes('/blobs/')) return reply(res, 200, 'tampered');
      reply(res, 200, '{"schemaVersion":2}', { 'content-type': 'application/vnd.oci.image.manifest.v1+json; charset=utf-8' });
    });
    servers.push(registry);
    const api = client({ url: registry.url });
    const digest = sha256('original');

    const read = async (verify: boolean) => {
      const chunks: Buffer[] = [];
      for await (const chunk of await api.openBlob('a/b', digest, verify)) chunks.push(chunk);
      return Buffer.concat(chunks).toString();
    };
    await expect(read(true)).rejects.toThrow(`blob ${digest} does not match its digest`);
    expect(await read(false)).toBe('tampered');
    await expect(api.readManifest('a/b', digest)).rejects.toThrow(`manifest ${digest} does not match its digest`);
    expect(await api.readManifest('a/b', 'latest')).toEqual({ bytes: Buffer.from('{"schemaVersion":2}'), mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    expect(await api.readManifest('a/b', sha256('{"schemaVersion":2}'))).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json' });
  });

  it('pushes blobs monolithically, streamed and in chunks, and images blob by blob', async () => {
    const registry = await serve((req, res) => {
      if (req.method === 'HEAD') return reply(res, req.url.includes('present') ? 200 : 404);
      if (req.method === 'POST' && req.url.includes('digest=')) return reply(res, 201);
      if (req.method === 'POST') return reply(res, 202, '', { location: '/v2/a/b/blobs/uploads/u1?state=0' });
      if (req.method === 'PATCH') return reply(res, 202, '', { location: `/v2/a/b/blobs/uploads/u1?state=${req.body.length}` });
      if (req.method === 'PUT' && req.url.includes('/manifests/bad')) return reply(res, 400, '{"errors":[{"code":"MANIFEST_INVALID"}]}');
      reply(res, 201);
    });
    servers.push(registry);
    const api = client({ url: registry.url });

    await api.pushBlobStream('a/b', 'sha256:s', 6, () => Readable.from([Buffer.from('abc'), Buffer.from('def')]));
    expect(registry.seen.slice(-2).map((r) => `${r.method} ${r.url} ${r.body}`)).toEqual(['POST /v2/a/b/blobs/uploads/ ', 'PUT /v2/a/b/blobs/uploads/u1?state=0&digest=sha256%3As abcdef']);

    async function* chunks() {
      yield { start: 0, length: 3, body: Buffer.from('abc') };
      yield { start: 3, length: 3, body: Readable.from([Buffer.from('def')]) };
    }
    await api.pushBlobChunks('a/b', 'sha256:c', chunks());
    expect(registry.seen.slice(-4).map((r) => `${r.method} ${r.url} ${r.headers['content-range'] ?? ''}`)).toEqual([
      'POST /v2/a/b/blobs/uploads/ ',
      'PATCH /v2/a/b/blobs/uploads/u1?state=0 0-2',
      'PATCH /v2/a/b/blobs/uploads/u1?state=3 3-5',
      'PUT /v2/a/b/blobs/uploads/u1?state=3&digest=sha256%3Ac ',
    ]);

    await api.ensureBlob('a/b', { digest: 'sha256:present', data: Buffer.from('x') });
    expect(registry.seen.at(-1)?.method).toBe('HEAD');
    await api.ensureBlob('a/b', { digest: 'sha256:absent', data: Buffer.from('x') });
    expect(registry.seen.at(-1)?.url).toBe('/v2/a/b/blobs/uploads/?digest=sha256:absent');

    const manifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json', body: '{}' };
    expect((await api.pushImage('a/b', 'v1', manifest, [{ digest: 'sha256:1', data: Buffer.from('1') }])).status).toBe(201);
    expect(registry.seen.at(-1)).toMatchObject({ method: 'PUT', url: '/v2/a/b/manifests/v1', body: Buffer.from('{}') });
    expect(registry.seen.at(-1)?.headers['content-type']).toBe(manifest.mediaType);
    expect(await api.pushImage('a/b', 'bad', manifest, [])).toMatchObject({ status: 400, code: 'MANIFEST_INVALID' });
  });

  it('lists referrers, filtered by artifact type when the registry does not filter, and none without the API', async () => {
    const registry = await serve((req, res) => {
      if (req.url.includes('/none/')) return reply(res, 404);
      reply(res, 200, JSON.stringify({ manifests: [{ digest: 'sha256:1', artifactType: 'x' }, { digest: 'sha256:2', artifactType: 'y' }] }));
    });
    servers.push(registry);
    const api = client({ url: registry.url });
    expect((await api.referrers('a/b', 'sha256:s', 'y')).map((d) => d.digest)).toEqual(['sha256:2']);
    expect(registry.seen.at(-1)?.url).toBe('/v2/a/b/referrers/sha256:s?artifactType=y');
    expect(await api.referrers('a/b', 'sha256:s')).toHaveLength(2);
    expect(await api.referrers('none/b', 'sha256:s')).toEqual([]);
  });
});
