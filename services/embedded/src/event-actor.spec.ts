/**
 * Events name who did it: pushes through the real embedded registry with auth on, as a user and as a robot, and the
 * events they cause carry that actor and the client's address after trusted proxies. A principal header the client
 * sends itself names nobody, with auth on or off.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { hashPassword } from '@lading/access';
import { LadingConfigInput, parseConfig } from '@lading/config';
import type { LadingEvent } from '@lading/events';
import { PRINCIPAL_HEADER, PRINCIPAL_PROOF_HEADER, principalProof } from '@lading/http';
import * as meta from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { imageManifest, makeBlob } from '@lading/testing';
import { EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';

const logger = createLogger({ service: 'test', level: 'silent' });

describe('the actor of events', () => {
  let dir: string;
  let registry: EmbeddedRegistry;
  let seen: LadingEvent[];

  async function open(overrides: LadingConfigInput): Promise<void> {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-actor-'));
    registry = await createEmbeddedRegistry(parseConfig({ ...overrides, data: { dir }, log: { level: 'silent', access: false } }), logger);
    seen = [];
    registry.bus.subscribe((event) => {
      seen.push(event);
    });
  }

  async function close(): Promise<void> {
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  }

  /** A token for `login` with push on `repository`, from the registry's own token endpoint. */
  async function tokenFor(login: string, password: string, repository: string): Promise<string> {
    const res = await request(registry.app)
      .get('/token')
      .query({ service: 'lading', scope: `repository:${repository}:pull,push` })
      .set('Authorization', `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`);
    expect(res.status).toBe(200);
    return res.body.token as string;
  }

  /** Pushes an image (config blob + manifest by tag) with these extra headers; returns the events it caused. */
  async function push(repository: string, headers: Record<string, string>): Promise<LadingEvent[]> {
    // Events of earlier requests (the token's login) are delivered first, so that only the push's are counted.
    await registry.flushEvents();
    const before = seen.length;
    const config = makeBlob(`{"os":"linux","n":${Math.random()}}`);
    const manifest = imageManifest(config, []);
    await request(registry.app)
      .post(`/v2/${repository}/blobs/uploads/?digest=${config.digest}`)
      .set(headers)
      .set('Content-Type', 'application/octet-stream')
      .send(config.data)
      .expect(201);
    await request(registry.app).put(`/v2/${repository}/manifests/v1`).set(headers).set('Content-Type', manifest.mediaType).send(manifest.body.toString()).expect(201);
    await registry.flushEvents();
    const caused = seen.slice(before);
    expect(caused.map((e) => e.type)).toEqual(expect.arrayContaining(['io.lading.blob.uploaded', 'io.lading.manifest.pushed', 'io.lading.tag.updated']));
    return caused;
  }

  describe('with auth on', () => {
    beforeAll(async () => {
      await open({ auth: { enabled: true }, http: { trustedProxies: 1 } });
      await meta.upsertNamespace(registry.db, 'team', false);
      await meta.createUser(registry.db, 'alice', await hashPassword('alice-password'), false);
      await meta.addGrant(registry.db, 'team', 'user', 'alice', 'push');
      await meta.createRobot(registry.db, 'ci-bot', await hashPassword('robot-secret'), null, 'alice');
      // Grants name robots by their login, as the admin API stores them.
      await meta.addGrant(registry.db, 'team', 'robot', 'robot$ci-bot', 'push');
    });
    afterAll(close);

    it('names the user who pushed on every event of the push', async () => {
      const token = await tokenFor('alice', 'alice-password', 'team/app');
      const events = await push('team/app', { Authorization: `Bearer ${token}` });
      for (const event of events) expect(event.data.actor).toEqual({ type: 'user', name: 'alice' });
    });

    it('names a robot by its own name on every event of its push', async () => {
      const token = await tokenFor('robot$ci-bot', 'robot-secret', 'team/app');
      const events = await push('team/app', { Authorization: `Bearer ${token}` });
      for (const event of events) expect(event.data.actor).toEqual({ type: 'robot', name: 'ci-bot' });
    });

    it('ignores a principal header and proof the client sends itself', async () => {
      const token = await tokenFor('alice', 'alice-password', 'team/app');
      const forged = { [PRINCIPAL_HEADER]: 'robot$ci-bot', [PRINCIPAL_PROOF_HEADER]: principalProof('x'.repeat(32), 'r-1', 'robot$ci-bot'), 'X-Request-Id': 'r-1' };
      const events = await push('team/app', { Authorization: `Bearer ${token}`, ...forged });
      for (const event of events) expect(event.data.actor).toEqual({ type: 'user', name: 'alice' });
    });

    it('records the client address after the trusted proxy, not the address that connected', async () => {
      const token = await tokenFor('alice', 'alice-password', 'team/app');
      const events = await push('team/app', { Authorization: `Bearer ${token}`, 'X-Forwarded-For': '198.51.100.1, 203.0.113.7' });
      for (const event of events) expect(event.data.request?.addr).toBe('203.0.113.7');
    });
  });

  it('with auth off, names nobody whatever principal the client sends', async () => {
    await open({});
    try {
      const events = await push('open/app', { [PRINCIPAL_HEADER]: 'alice' });
      for (const event of events) expect(event.data.actor).toEqual({ type: 'anonymous', name: null });
    } finally {
      await close();
    }
  });
});
