/**
 * A forward upgrade from the previous release, Lading 0.1.0 (commit 51729c4: migrations 0001..0005), to this one.
 * The database is what 0.1.0 left: its migrations, byte for byte, and the rows it wrote through its own API
 * (services/embedded/test/release-0.1.0, made by make-seed.sh there). The current registry then starts on it as an
 * operator's would, on PostgreSQL and on PGlite: its start-up applies the newer migrations, and everything 0.1.0
 * stored is served (manifests by tag and digest, an index, a referrer, a Docker manifest in a public namespace, tags,
 * blob metadata, users, a personal access token, a robot, the signing key, a webhook subscription), refresh tokens
 * 0.1.0 issued are refused as 0006 says, and pushes go on where 0.1.0's event sequence left off.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { SEALED_PREFIX } from '@lading/access';
import { LadingConfigInput, parseConfig } from '@lading/config';
import { Database, applyMigrations, createPgDatabase, createPgliteDatabase, planMigrations } from '@lading/metadata';
import { REGISTRY_MIGRATIONS } from '@lading/runtime';
import { createLogger } from '@lading/telemetry';
import { ThrowawayDatabase, createThrowawayDatabase } from '@lading/testing';
import { EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';

const RELEASE = path.resolve(__dirname, '..', 'test', 'release-0.1.0');
/** 0.1.0's migrations, as that release shipped them. */
const RELEASE_MIGRATIONS = { owner: 'lading-0.1.0', dir: path.join(RELEASE, 'migrations') };

/** What make-seed.sh handed out and pushed. */
interface Fixture {
  passwords: { admin: string; alice: string; bob: string };
  aliceToken: string;
  robotSecret: string;
  refreshTokens: { identity: string; passwordGrant: string };
  teamApp: { config: string; layer: string; image: string; index: string; referrer: string; deleted: string };
  pubTool: { docker: string; layer: string };
}

const silent = createLogger({ service: 'test', level: 'silent' });
const digestOf = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const ACCEPT = [OCI_MANIFEST, 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

/** Puts 0.1.0's schema and rows into an empty database. */
async function seedRelease(db: Database): Promise<void> {
  expect(await applyMigrations(db, [RELEASE_MIGRATIONS])).toMatchObject({ from: 0, to: 5 });
  await db.exec(await readFile(path.join(RELEASE, 'seed.sql'), 'utf8'));
}

describe('a forward upgrade from Lading 0.1.0', () => {
  let fixture: Fixture;
  let current: string[];

  beforeAll(async () => {
    fixture = JSON.parse(await readFile(path.join(RELEASE, 'fixture.json'), 'utf8')) as Fixture;
    current = (await planMigrations(REGISTRY_MIGRATIONS)).map((m) => m.name);
  });

  it("starts from 0.1.0's migrations, unchanged in this release (a shipped migration is never edited)", async () => {
    const shipped = (await readdir(RELEASE_MIGRATIONS.dir)).sort();
    expect(shipped).toEqual(['0001_registry.sql', '0002_auth.sql', '0003_gc.sql', '0004_events.sql', '0005_webhooks.sql']);
    const now = new Map((await planMigrations(REGISTRY_MIGRATIONS)).map((m) => [m.name, m.file]));
    for (const name of shipped) {
      expect([name, await readFile(now.get(name) ?? 'missing', 'utf8')]).toEqual([name, await readFile(path.join(RELEASE_MIGRATIONS.dir, name), 'utf8')]);
    }
  });

  describe.each([
    ['PostgreSQL', 'postgres'],
    ['PGlite (the embedded mode)', 'pglite'],
  ] as const)('on %s', (_name, driver) => {
    let dir: string;
    let throwaway: ThrowawayDatabase | undefined;
    let registry: EmbeddedRegistry;
    let oldKid: string;

    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'lading-upgrade-'));
      let database: LadingConfigInput['database'];
      let seeded: Database;
      if (driver === 'postgres') {
        throwaway = await createThrowawayDatabase('upgrade');
        database = { driver, url: throwaway.url };
        seeded = await createPgDatabase({ url: throwaway.url, poolSize: 1, statementTimeoutMs: 30_000, connectTimeoutMs: 5000 });
      } else {
        database = { driver };
        seeded = await createPgliteDatabase(path.join(dir, 'metadata'));
      }
      try {
        await seedRelease(seeded);
        oldKid = (await seeded.query<{ kid: string }>(`SELECT kid FROM signing_keys`)).rows[0].kid;
      } finally {
        await seeded.close();
      }
      // The current registry, started as an operator would after the upgrade: it migrates on start (`auto`) and seals
      // the secrets 0.1.0 stored in plain text under the key it is now given. Its collector stays quiet; its webhook
      // delivery runs (it seals the subscriptions' secrets), allowed to 0.1.0's loopback subscriber.
      registry = await createEmbeddedRegistry(
        parseConfig({
          data: { dir },
          database,
          auth: { enabled: true },
          secrets: { key: Buffer.alloc(32, 7).toString('base64') },
          gc: { enabled: false },
          webhooks: { allowList: ['127.0.0.1'] },
          log: { level: 'silent', access: false },
        }),
        silent,
      );
    });
    afterAll(async () => {
      await registry?.close();
      await throwaway?.drop();
      await rm(dir, { recursive: true, force: true });
    });

    /** A bearer token for `scope` from the token endpoint, with Basic credentials or anonymously. */
    async function token(scope: string, credentials?: [string, string]): Promise<string> {
      const asked = request(registry.app).get(`/token?service=lading&scope=${encodeURIComponent(scope)}`);
      const answer = await (credentials ? asked.set('Authorization', basic(...credentials)) : asked).expect(200);
      return answer.body.token as string;
    }

    it("applied this release's newer migrations on start, recording every one", async () => {
      const recorded = (await registry.db.query<{ name: string }>(`SELECT name FROM schema_migrations ORDER BY name`)).rows.map((r) => r.name);
      expect(recorded).toEqual([...current].sort());
      expect(current).toContain('0006_auth_hardening.sql');
    });

    it('serves the images 0.1.0 stored: by tag and digest, the index, the referrer, the tags, the blob metadata', async () => {
      const { image, index, referrer, deleted, layer } = fixture.teamApp;
      const bearer = `Bearer ${await token('repository:team/app:pull', ['alice', fixture.passwords.alice])}`;
      const get = (url: string) => request(registry.app).get(url).set('Authorization', bearer).set('Accept', ACCEPT);
      for (const reference of ['v1', 'latest', digestOf(image)]) {
        const got = await get(`/v2/team/app/manifests/${reference}`).buffer(true).parse((res, done) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => done(null, text));
        });
        expect([reference, got.status, got.headers['docker-content-digest'], got.body]).toEqual([reference, 200, digestOf(image), image]);
      }
      const multi = await get('/v2/team/app/manifests/multi').expect(200);
      expect(multi.headers['docker-content-digest']).toBe(digestOf(index));
      expect((await get('/v2/team/app/tags/list').expect(200)).body).toEqual({ name: 'team/app', tags: ['latest', 'multi', 'v1'] });
      const referrers = await get(`/v2/team/app/referrers/${digestOf(image)}`).expect(200);
      expect(referrers.body.manifests).toEqual([expect.objectContaining({ digest: digestOf(referrer), artifactType: 'application/spdx+json' })]);
      await get(`/v2/team/app/manifests/${digestOf(deleted)}`).expect(404);
      const blob = await request(registry.app).head(`/v2/team/app/blobs/${digestOf(layer)}`).set('Authorization', bearer).expect(200);
      expect(Number(blob.headers['content-length'])).toBe(Buffer.byteLength(layer));
    });

    it("serves 0.1.0's public namespace anonymously: its Docker schema 2 manifest", async () => {
      const bearer = `Bearer ${await token('repository:pub/tool:pull')}`;
      const got = await request(registry.app).get('/v2/pub/tool/manifests/1.0').set('Authorization', bearer).set('Accept', ACCEPT).expect(200);
      expect(got.headers['docker-content-digest']).toBe(digestOf(fixture.pubTool.docker));
      expect(got.headers['content-type']).toBe('application/vnd.docker.distribution.manifest.v2+json');
    });

    it("logs in 0.1.0's users, personal access token and robot with their grants, and refuses its refresh tokens (0006 ended them)", async () => {
      await token('repository:team/app:pull,push', ['alice', fixture.aliceToken]);
      await token('repository:team/app:pull', ['robot$ci', fixture.robotSecret]);
      const users = await request(registry.app).get('/admin/v1/users').set('Authorization', basic('bob', fixture.passwords.bob)).expect(200);
      expect(users.body.users.map((u: { name: string }) => u.name).sort()).toEqual(['admin', 'alice', 'bob']);
      await request(registry.app).get('/admin/v1/users').set('Authorization', basic('alice', fixture.passwords.alice)).expect(403);
      const refresh = (refreshToken: string) =>
        request(registry.app).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: refreshToken, service: 'lading', client_id: 'test', scope: 'repository:team/app:pull' });
      for (const old of [fixture.refreshTokens.identity, fixture.refreshTokens.passwordGrant]) {
        const answer = await refresh(old);
        expect([answer.status, answer.body.token]).toEqual([401, undefined]);
      }
      // What alice does then: logs in again, and the refresh token she gets now works.
      const login = await request(registry.app).get('/token?service=lading&offline_token=true').set('Authorization', basic('alice', fixture.passwords.alice)).expect(200);
      expect((await refresh(login.body.refresh_token).expect(200)).body.token).toEqual(expect.any(String));
    });

    it("keeps 0.1.0's signing key in the JWKS and its webhook subscription, both now sealed at rest", async () => {
      const jwks = await request(registry.app).get('/.well-known/jwks.json').expect(200);
      expect(jwks.body.keys.map((k: { kid: string }) => k.kid)).toContain(oldKid);
      const pem = (await registry.db.query<{ pem: string }>(`SELECT private_key_pem AS pem FROM signing_keys WHERE kid = $1`, [oldKid])).rows[0].pem;
      expect(pem.startsWith(SEALED_PREFIX)).toBe(true);
      const hooks = await request(registry.app).get('/admin/v1/webhooks').set('Authorization', basic('admin', fixture.passwords.admin)).expect(200);
      expect(hooks.body.webhooks).toEqual([expect.objectContaining({ name: 'scanner', namespace: 'team', url: 'http://127.0.0.1:9/lading-hook' })]);
      const secret = (await registry.db.query<{ secret: string }>(`SELECT secret FROM webhook_subscriptions`)).rows[0].secret;
      expect(secret.startsWith(SEALED_PREFIX)).toBe(true);
    });

    it("takes new pushes on 0.1.0's repositories, numbering their events after the ones 0.1.0 wrote", async () => {
      const before = (await registry.db.query<{ seq: string }>(`SELECT max(sequence)::text AS seq FROM outbox WHERE repository = 'team/app'`)).rows[0].seq;
      const bearer = `Bearer ${await token('repository:team/app:pull,push', ['alice', fixture.passwords.alice])}`;
      await request(registry.app).put('/v2/team/app/manifests/v2').set('Authorization', bearer).set('Content-Type', OCI_MANIFEST).send(fixture.teamApp.image).expect(201);
      const tags = await request(registry.app).get('/v2/team/app/tags/list').set('Authorization', bearer).expect(200);
      expect(tags.body.tags).toEqual(['latest', 'multi', 'v1', 'v2']);
      const after = await registry.db.query<{ sequence: string; type: string }>(`SELECT sequence::text, type FROM outbox WHERE repository = 'team/app' AND sequence > $1 ORDER BY sequence`, [before]);
      expect(after.rows).toEqual([{ sequence: String(Number(before) + 1), type: 'io.lading.tag.updated' }]);
    });
  });
});
