/**
 * Company sign-in through the real embedded registry (its gateway and route table in front of the auth service): a CI
 * job's ID token, from a loopback issuer serving discovery and a JWKS over HTTP, buys a push token whose events name
 * `wi$<rule>`, and the console's sign-in starts at the provider.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { parseConfig } from '@lading/config';
import type { LadingEvent } from '@lading/events';
import { createLogger } from '@lading/telemetry';
import { LoopbackIssuer, imageManifest, makeBlob, startLoopbackIssuer } from '@lading/testing';
import { EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';

describe('OIDC through the embedded registry', () => {
  let dir: string;
  let ci: LoopbackIssuer;
  let registry: EmbeddedRegistry;
  const seen: LadingEvent[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-oidc-'));
    ci = await startLoopbackIssuer();
    const config = parseConfig({
      data: { dir },
      log: { level: 'silent', access: false },
      http: { host: 'http://registry.test' },
      auth: {
        enabled: true,
        oidc: { issuer: ci.issuer, clientId: 'lading' },
        workloadIdentity: [{ name: 'app-main', issuer: ci.issuer, audience: 'registry.test', claims: { ref: 'refs/heads/main' }, grants: [{ namespace: 'team', role: 'push' }] }],
      },
    });
    registry = await createEmbeddedRegistry(config, createLogger({ service: 'test', level: 'silent' }));
    registry.bus.subscribe((event) => {
      seen.push(event);
    });
  });
  afterAll(async () => {
    await registry.close();
    await ci.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('pushes with a token exchanged for a CI ID token, and the events name wi$<rule> as their actor', async () => {
    const idToken = await ci.sign({ sub: 'repo:org/app:ref:refs/heads/main', ref: 'refs/heads/main', aud: 'registry.test' });
    const exchanged = await request(registry.app)
      .post('/token')
      .type('form')
      .send({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: idToken, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token', scope: 'repository:team/app:pull,push', service: 'lading' })
      .expect(200);
    const auth = { Authorization: `Bearer ${exchanged.body.access_token}` };
    const config = makeBlob(`{"os":"linux","n":${Math.random()}}`);
    const manifest = imageManifest(config, []);
    await request(registry.app).post(`/v2/team/app/blobs/uploads/?digest=${config.digest}`).set(auth).set('Content-Type', 'application/octet-stream').send(config.data).expect(201);
    await request(registry.app).put('/v2/team/app/manifests/v1').set(auth).set('Content-Type', manifest.mediaType).send(manifest.body.toString()).expect(201);
    await registry.flushEvents();
    const pushed = seen.find((e) => e.type === 'io.lading.manifest.pushed');
    expect(pushed?.data.actor).toEqual({ type: 'user', name: 'wi$app-main' });
    // Outside the rule's grants, the same token holds nothing.
    await request(registry.app).put('/v2/other/app/manifests/v1').set(auth).set('Content-Type', manifest.mediaType).send(manifest.body.toString()).expect(401);
  });

  it('routes the console sign-in to the auth service, and the session answer offers it', async () => {
    const session = await request(registry.app).get('/ui/api/session').expect(200);
    expect(session.body).toMatchObject({ auth: true, oidc: true });
    // The loopback issuer has no authorization endpoint: the sign-in cannot start, and says so.
    const login = await request(registry.app).get('/ui/api/oidc/login').expect(503);
    expect(login.body.errors[0].code).toBe('UNAVAILABLE');
  });
});
