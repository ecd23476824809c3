import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import request from 'supertest';
import { parseConfig } from '@lading/config';
import { createLogger } from '@lading/telemetry';
import { imageManifest, makeBlob } from '@lading/testing';
import { EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/**
 * A scripted session against a real embedded registry with auth on, every log line captured at debug level: no
 * secret used in it (passwords, wrong guesses, personal access tokens, robot secrets, access and refresh tokens,
 * webhook secrets and signatures) may appear in any line, whole or as the Basic header that carried it.
 */
describe('secrets never reach the logs', () => {
  let dir: string;
  let registry: EmbeddedRegistry;
  let receiver: http.Server;
  const lines: string[] = [];
  /** Every secret the session sends or receives. */
  const secrets = new Set<string>();
  const deliveries: http.IncomingHttpHeaders[] = [];

  const ADMIN = { user: 'admin', password: 'Admin-Passw0rd-Secret' };

  function remember<T extends string | undefined>(secret: T): T {
    if (secret) {
      secrets.add(secret);
      // What a Basic header or a log line might carry instead of the secret itself.
      secrets.add(Buffer.from(secret).toString('base64').replace(/=+$/, ''));
    }
    return secret;
  }

  /** An access token: its header is the same for every token (public); the claims and the signature are not. */
  function rememberJwt(jwt: string): string {
    remember(jwt);
    for (const part of jwt.split('.').slice(1)) remember(part);
    return jwt;
  }

  /** The secrets of which some run of 12 characters appears in the log (a leak of all but the last character is one). */
  function leakedIn(log: string): string[] {
    return [...secrets].filter((secret) => {
      for (let i = 0; i + 12 <= secret.length; i++) if (log.includes(secret.slice(i, i + 12))) return true;
      return false;
    });
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-secrets-'));
    receiver = http.createServer((req, res) => {
      deliveries.push(req.headers);
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const config = parseConfig({
      data: { dir },
      auth: { enabled: true, hashWorkers: 1 },
      admin: ADMIN,
      log: { level: 'debug', access: true },
      gc: { enabled: false },
      webhooks: { enabled: true, allowList: ['127.0.0.1/32'], pollInterval: '100ms', backoffInitial: '100ms' },
    });
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    remember(ADMIN.password);
    registry = await createEmbeddedRegistry(config, createLogger({ service: 'registry', level: 'debug', destination }));
  });
  afterAll(async () => {
    await registry.close();
    await new Promise((resolve) => receiver.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('runs logins, tokens, pushes, pulls and a webhook without one secret in a log line', async () => {
    const app = registry.app;
    const admin = (method: 'get' | 'post' | 'put' | 'delete', url: string, body?: object) => {
      const req = request(app)[method](`/admin/v1${url}`).set('Authorization', basic(ADMIN.user, ADMIN.password));
      return body ? req.send(body) : req;
    };
    const token = async (user: string, password: string, scope?: string) => {
      const res = await request(app)
        .get(`/token?service=lading${scope ? `&scope=${encodeURIComponent(scope)}` : ''}`)
        .set('Authorization', basic(user, password));
      if (res.body.token) rememberJwt(res.body.token);
      return res;
    };

    await request(app).get('/v2/').expect(401);
    // Logins: right, wrong, a password typed as the username, no colon at all, a NUL.
    expect((await token(ADMIN.user, ADMIN.password)).status).toBe(200);
    expect((await token(ADMIN.user, remember('Wrong-Guess-Secret-1'))).status).toBe(401);
    expect((await token(remember('Typed-In-The-Username-Field-9'), 'x')).status).toBe(401);
    const noColon = remember('NoColonPasswordSecret7');
    expect((await request(app).get('/token?service=lading').set('Authorization', `Basic ${Buffer.from(noColon).toString('base64')}`)).status).toBe(400);
    expect((await request(app).get('/admin/v1/users').set('Authorization', `Basic ${Buffer.from(noColon).toString('base64')}`)).status).toBe(400);
    expect((await token('admin', `${remember('Nul-Secret-Before')}\u0000after`)).status).toBe(400);

    // Users, personal access tokens, robots, namespaces and grants.
    const alicePassword = remember('Alice-Passw0rd-Secret');
    await admin('post', '/users', { name: 'alice', password: alicePassword }).expect(201);
    const pat = remember((await admin('post', '/users/alice/tokens', { name: 'laptop' }).expect(201)).body.token as string);
    const robot = remember((await admin('post', '/robots', { name: 'ci' }).expect(201)).body.secret as string);
    await admin('post', '/namespaces', { prefix: 'team' }).expect(201);
    await admin('post', '/grants', { prefix: 'team', principal: 'user:alice', role: 'pull' }).expect(201);
    await admin('post', '/grants', { prefix: 'team', principal: 'robot:ci', role: 'push' }).expect(201);
    expect((await token('alice', pat)).status).toBe(200);
    expect((await token('alice', remember('lpat_forged-token-secret'))).status).toBe(401);

    // Refresh tokens: issued, rotated, replayed, and killed by a password change.
    const offline = await request(app).post('/token').type('form').send({ grant_type: 'password', username: 'alice', password: alicePassword, access_type: 'offline', service: 'lading' });
    const first = remember(offline.body.refresh_token as string);
    rememberJwt(offline.body.token);
    const rotated = await request(app).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: first, service: 'lading' }).expect(200);
    remember(rotated.body.refresh_token);
    rememberJwt(rotated.body.token);
    await request(app).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: first, service: 'lading' }).expect(401);
    await request(app).post('/token').type('form').send({ grant_type: 'password', username: 'alice', password: remember('Form-Wrong-Secret-3'), service: 'lading' }).expect(401);
    await admin('put', '/users/alice/password', { password: remember('Alice-New-Passw0rd-Secret') }).expect(204);

    // A webhook with its secret.
    const port = (receiver.address() as AddressInfo).port;
    const hook = await admin('post', '/webhooks', { name: 'ci', url: `http://127.0.0.1:${port}/hook` }).expect(201);
    remember(hook.body.secret as string);

    // A push as the robot, a pull as alice, and a request with a forged bearer token.
    const push = (await token('robot$ci', robot, 'repository:team/app:pull,push')).body.token as string;
    const config = makeBlob('{"os":"linux"}');
    const manifest = imageManifest(config, []);
    await request(app).post(`/v2/team/app/blobs/uploads/?digest=${config.digest}`).set('Authorization', `Bearer ${push}`).set('Content-Type', 'application/octet-stream').send(config.data).expect(201);
    await request(app).put('/v2/team/app/manifests/v1').set('Authorization', `Bearer ${push}`).set('Content-Type', manifest.mediaType).send(manifest.body.toString()).expect(201);
    const pull = (await token('alice', pat, 'repository:team/app:pull')).body.token as string;
    await request(app).get('/v2/team/app/manifests/v1').set('Authorization', `Bearer ${pull}`).expect(200);
    await request(app).get('/v2/team/app/manifests/v1').set('Authorization', `Bearer ${remember('eyJforged.Bearer-Token-Secret.sig')}`).expect(401);

    // The push's events reach the webhook: its signature is a secret too.
    await registry.flushEvents();
    while (deliveries.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    for (const headers of deliveries) remember(String(headers['webhook-signature']).split(',').pop());

    const log = lines.join('');
    expect(lines.length).toBeGreaterThan(20);
    expect(log).toContain('failed login');
    expect(leakedIn(log)).toEqual([]);
  });
});
