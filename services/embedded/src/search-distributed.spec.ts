/**
 * Search behind the distributed gateway: the gateway proxies /v1/search and /api/v1/search over HTTP to the manifest
 * service and signs the caller it verified, so the manifest service lists what that caller may pull; a caller it
 * cannot prove (a proxy without the shared secret) is anonymous there.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashPassword } from '@lading/access';
import { createAuthService } from '@lading/auth';
import { authorizationFromConfig, createGateway, createUpstreamProxy, type UpstreamProxy } from '@lading/gateway';
import { createManifestService } from '@lading/manifest';
import * as meta from '@lading/metadata';
import { type TestDeps, createTestDeps } from '@lading/testing';

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('search behind the distributed gateway', () => {
  const secret = randomBytes(32).toString('base64url');
  let deps: TestDeps;
  const servers: http.Server[] = [];
  const proxies: UpstreamProxy[] = [];
  /** The gateway that signs principals for the manifest service, and one whose proxy does not. */
  let signing: string;
  let unsigned: string;

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true }, upstreams: { secret } });
    const { db, config, logger } = deps;
    const auth = createAuthService({ db, config, logger });
    const authApp = await listen(auth.app as http.RequestListener);
    const manifest = await listen(createManifestService({ db, config, logger, events: deps.events }) as http.RequestListener);
    servers.push(authApp.server, manifest.server);
    const proxy = (service: string, url: string, principalSecret?: string) => {
      const p = createUpstreamProxy({ service, urls: [url], headersTimeoutMs: 10_000, logger, principalSecret });
      proxies.push(p);
      return p.handler;
    };
    const gateway = async (principalSecret: string | undefined) => {
      const app = createGateway({
        dispatch: { blob: proxy('blob', manifest.url), manifest: proxy('manifest', manifest.url, principalSecret), auth: proxy('auth', authApp.url) },
        authorize: authorizationFromConfig(config, () => auth.keys.verificationKeys()),
        logger,
      });
      const listening = await listen(app as http.RequestListener);
      servers.push(listening.server);
      return listening.url;
    };
    signing = await gateway(secret);
    unsigned = await gateway(undefined);

    await meta.createUser(db, 'alice', await hashPassword('alice-password'), false);
    await meta.upsertNamespace(db, 'public', true);
    await meta.upsertNamespace(db, 'team', false);
    await meta.addGrant(db, 'team', 'user', 'alice', 'pull');
    await db.transaction(async (tx) => {
      for (const [i, name] of ['public/tool', 'team/tool'].entries()) {
        const repo = await meta.ensureRepository(tx, name);
        const digest = `sha256:${(i + 1).toString(16).padStart(64, '0')}`;
        await meta.insertManifest(tx, { repositoryId: repo.id, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: null, payload: Buffer.from('{}'), subjectDigest: null, annotations: null, blobDigests: [], childDigests: [] });
      }
    });
  });

  afterAll(async () => {
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    await Promise.all(proxies.map((p) => p.close()));
    await deps?.close();
  });

  async function aliceToken(gatewayUrl: string): Promise<string> {
    const res = await fetch(`${gatewayUrl}/token?service=${deps.config.auth.service}`, {
      headers: { authorization: `Basic ${Buffer.from('alice:alice-password').toString('base64')}` },
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { token: string }).token;
  }

  async function names(gatewayUrl: string, path: string, token?: string): Promise<string[]> {
    const res = await fetch(`${gatewayUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: Array<{ name?: string; repository?: string }> };
    return body.results.map((r) => r.name ?? r.repository ?? '');
  }

  it('lists the public namespaces to anonymous callers and the granted ones too to a signed-in user, in both shapes', async () => {
    expect(await names(signing, '/v1/search?q=tool')).toEqual(['public/tool']);
    const token = await aliceToken(signing);
    expect(await names(signing, '/v1/search?q=tool', token)).toEqual(['public/tool', 'team/tool']);
    expect(await names(signing, '/api/v1/search?q=tool', token)).toEqual(['public/tool', 'team/tool']);
  });

  it('treats a caller the gateway does not sign for as anonymous at the manifest service', async () => {
    expect(await names(unsigned, '/v1/search?q=tool', await aliceToken(unsigned))).toEqual(['public/tool']);
  });

  it('answers Docker\'s ping at the gateway itself', async () => {
    const res = await fetch(`${signing}/v1/_ping`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
  });
});
