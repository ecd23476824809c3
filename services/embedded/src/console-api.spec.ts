/**
 * The web console's server side through the real gateway of an embedded registry with auth on: sessions (sign-in
 * with a password or a personal access token, the cookie, CSRF, sign-out), the existing APIs authorized by the
 * session, the repositories and tags listings, and the live feed, each seen by callers of different rights.
 */
import http from 'node:http';
import request from 'supertest';
import { TestManifest, imageIndex, imageManifest, makeBlob } from '@lading/testing';
import { type ServedRegistry, pushImage as pushThroughClient, serveEmbeddedRegistry } from '../test/served-registry';

const ROOT = { user: 'root', password: 'root-password-0' };
const ALICE = { user: 'alice', password: 'alice-password' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A signed-in console: the cookie to send back and the CSRF token. */
interface Session {
  cookie: string;
  csrf: string;
}

let r: ServedRegistry;
let rootAuth: string;
let team: { v1: TestManifest; layerSize: number; configSize: number };
let alicePat: string;

async function pushImage(repo: string, tag: string, platform: [string, string] = ['linux', 'amd64']): Promise<{ manifest: TestManifest; configSize: number; layerSize: number }> {
  const config = makeBlob(JSON.stringify({ architecture: platform[1], os: platform[0], rootfs: { type: 'layers', diff_ids: [] }, n: Math.random() }));
  const layer = makeBlob(300);
  for (const blob of [config, layer]) {
    await request(r.url).post(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`).set('Authorization', rootAuth).set('Content-Type', 'application/octet-stream').send(blob.data).expect(201);
  }
  const manifest = imageManifest(config, [layer]);
  await putManifest(repo, tag, manifest);
  return { manifest, configSize: config.size, layerSize: layer.size };
}

async function putManifest(repo: string, reference: string, manifest: TestManifest): Promise<void> {
  await request(r.url).put(`/v2/${repo}/manifests/${reference}`).set('Authorization', rootAuth).set('Content-Type', manifest.mediaType).send(manifest.body.toString()).expect(201);
}

async function signIn(username: string, password: string): Promise<Session> {
  const res = await request(r.url).post('/ui/api/session').send({ username, password }).expect(200);
  const setCookie = (res.headers['set-cookie'] as unknown as string[])[0];
  return { cookie: setCookie.split(';')[0], csrf: res.body.csrf };
}

const admin = (path: string, body: object) => request(r.url).post(`/admin/v1${path}`).set('Authorization', basic(ROOT.user, ROOT.password)).send(body);

beforeAll(async () => {
  r = await serveEmbeddedRegistry({ auth: { enabled: true, loginFailureLimit: 3 }, admin: ROOT, console: { maxEventStreams: 3, heartbeat: '300ms' } });
  await admin('/users', { name: ALICE.user, password: ALICE.password }).expect(201);
  await admin('/namespaces', { prefix: 'public', public: true }).expect(201);
  await admin('/namespaces', { prefix: 'team' }).expect(201);
  await admin('/namespaces', { prefix: 'secret' }).expect(201);
  await admin('/grants', { prefix: 'team', principal: 'user:alice', role: 'pull' }).expect(201);
  alicePat = (await admin('/users/alice/tokens', { name: 'console' }).expect(201)).body.token;
  const scopes = ['public/app', 'team/app', 'team/multi', 'secret/app'].map((repo) => `scope=repository:${repo}:pull,push,delete`).join('&');
  rootAuth = `Bearer ${(await request(r.url).get(`/token?service=lading&${scopes}`).set('Authorization', basic(ROOT.user, ROOT.password)).expect(200)).body.token}`;
  await pushImage('public/app', 'latest');
  const v1 = await pushImage('team/app', 'v1');
  team = { v1: v1.manifest, configSize: v1.configSize, layerSize: v1.layerSize };
  await pushImage('team/app', 'v2');
  await pushImage('team/app', 'v3');
  const amd = await pushImage('team/multi', 'amd64-only');
  const arm = await pushImage('team/multi', 'arm64-only', ['linux', 'arm64']);
  await putManifest('team/multi', 'multi', imageIndex([amd.manifest, arm.manifest]));
  await pushImage('secret/app', 'v1');
}, 60_000);

afterAll(async () => {
  await r?.close();
});

describe('console sessions', () => {
  it('signs in with a password: user, admin flag, CSRF token and an HttpOnly, SameSite=Strict, Secure cookie on /', async () => {
    const res = await request(r.url).post('/ui/api/session').send({ username: ALICE.user, password: ALICE.password }).expect(200);
    expect(res.body).toEqual({ user: 'alice', admin: false, adminOf: [], csrf: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    const cookie = (res.headers['set-cookie'] as unknown as string[])[0];
    expect(cookie).toMatch(/^lading_session=lses_[A-Za-z0-9_-]+;/);
    for (const attribute of ['HttpOnly', 'SameSite=Strict', 'Path=/', 'Secure']) expect(cookie.split('; ')).toContain(attribute);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('signs in with a personal access token as the password', async () => {
    const res = await request(r.url).post('/ui/api/session').send({ username: ALICE.user, password: alicePat }).expect(200);
    expect(res.body.user).toBe('alice');
    expect(res.headers['set-cookie']).toBeDefined();
  });

  it('refuses a wrong password with 401 in the JSON error envelope and sets no cookie', async () => {
    const res = await request(r.url).post('/ui/api/session').send({ username: ALICE.user, password: 'not-her-password' }).expect(401);
    expect(res.body.errors[0].code).toBe('UNAUTHORIZED');
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('limits sign-ins like the token endpoint: 429 with Retry-After once an account has failed too often from one address', async () => {
    await admin('/users', { name: 'carol', password: 'carol-password' }).expect(201);
    for (let i = 0; i < 3; i++) await request(r.url).post('/ui/api/session').send({ username: 'carol', password: 'wrong-password' }).expect(401);
    const res = await request(r.url).post('/ui/api/session').send({ username: 'carol', password: 'carol-password' }).expect(429);
    expect(res.body.errors[0].code).toBe('TOOMANYREQUESTS');
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('refuses a body without username and password with 400', async () => {
    const res = await request(r.url).post('/ui/api/session').send({ username: ALICE.user }).expect(400);
    expect(res.body.errors[0].code).toBe('UNSUPPORTED');
  });

  it('says who the session is, and that nobody is signed in without one', async () => {
    const session = await signIn(ROOT.user, ROOT.password);
    const mine = await request(r.url).get('/ui/api/session').set('Cookie', session.cookie).expect(200);
    expect(mine.body).toEqual({ user: 'root', admin: true, adminOf: [], csrf: session.csrf, auth: true });
    const nobody = await request(r.url).get('/ui/api/session').expect(200);
    expect(nobody.body).toEqual({ user: null, admin: false, adminOf: [], csrf: null, auth: true });
  });

  it('authorizes pulls of a private repository with the cookie alone', async () => {
    const session = await signIn(ALICE.user, ALICE.password);
    await request(r.url).get(`/v2/team/app/manifests/v1`).expect(401);
    const res = await request(r.url).get(`/v2/team/app/manifests/v1`).set('Cookie', session.cookie).set('Accept', team.v1.mediaType).expect(200);
    expect(res.headers['docker-content-digest']).toBe(team.v1.digest);
    await request(r.url).get('/v2/team/app/tags/list').set('Cookie', session.cookie).expect(200);
    // Her grants, not more: the secret namespace stays closed.
    await request(r.url).get('/v2/secret/app/tags/list').set('Cookie', session.cookie).expect(401);
  });

  it('refuses a change made with the cookie but without its CSRF token (403 DENIED), and changes nothing', async () => {
    const session = await signIn(ROOT.user, ROOT.password);
    const res = await request(r.url).delete('/v2/team/app/manifests/v3').set('Cookie', session.cookie).expect(403);
    expect(res.body.errors[0].code).toBe('DENIED');
    await request(r.url).delete('/v2/team/app/manifests/v3').set('Cookie', session.cookie).set('X-CSRF-Token', 'x'.repeat(43)).expect(403);
    await request(r.url).post('/admin/v1/namespaces').set('Cookie', session.cookie).send({ prefix: 'csrf' }).expect(403);
    await request(r.url).get('/v2/team/app/manifests/v3').set('Authorization', rootAuth).expect(200);
    const namespaces = await request(r.url).get('/admin/v1/namespaces').set('Cookie', session.cookie).expect(200);
    expect(JSON.stringify(namespaces.body)).not.toContain('"csrf"');
  });

  it('makes changes with the cookie and its CSRF token: a tag delete, and the admin API', async () => {
    const session = await signIn(ROOT.user, ROOT.password);
    await request(r.url).delete('/v2/team/app/manifests/v3').set('Cookie', session.cookie).set('X-CSRF-Token', session.csrf).expect(202);
    await request(r.url).get('/v2/team/app/manifests/v3').set('Authorization', rootAuth).expect(404);
    await request(r.url).get('/admin/v1/users').set('Cookie', session.cookie).expect(200);
  });

  it('keeps the admin API to admins when signed in', async () => {
    const session = await signIn(ALICE.user, ALICE.password);
    await request(r.url).get('/admin/v1/users').set('Cookie', session.cookie).expect(403);
  });

  it('leaves requests with an Authorization header alone: no CSRF token needed, the cookie ignored', async () => {
    const session = await signIn(ALICE.user, ALICE.password);
    await request(r.url).get('/admin/v1/users').set('Cookie', session.cookie).set('Authorization', basic(ROOT.user, ROOT.password)).expect(200);
    const res = await request(r.url).get('/v2/secret/app/tags/list').set('Cookie', session.cookie).set('Authorization', rootAuth).expect(200);
    expect(res.body.name).toBe('secret/app');
  });

  it('signs out: 204, the cookie cleared, and the session no longer authorizes anything', async () => {
    const session = await signIn(ALICE.user, ALICE.password);
    await request(r.url).get('/v2/team/app/tags/list').set('Cookie', session.cookie).expect(200);
    await request(r.url).delete('/ui/api/session').set('Cookie', session.cookie).expect(403);
    const res = await request(r.url).delete('/ui/api/session').set('Cookie', session.cookie).set('X-CSRF-Token', session.csrf).expect(204);
    expect((res.headers['set-cookie'] as unknown as string[])[0]).toMatch(/^lading_session=; Max-Age=0/);
    expect((await request(r.url).get('/ui/api/session').set('Cookie', session.cookie).expect(200)).body.user).toBeNull();
    await request(r.url).get('/v2/team/app/tags/list').set('Cookie', session.cookie).expect(401);
  });

  it('ends the sessions of a user whose password changes', async () => {
    await admin('/users', { name: 'bob', password: 'bob-password-1' }).expect(201);
    const session = await signIn('bob', 'bob-password-1');
    await request(r.url).put('/admin/v1/users/bob/password').set('Authorization', basic(ROOT.user, ROOT.password)).send({ password: 'bob-password-2' }).expect(204);
    expect((await request(r.url).get('/ui/api/session').set('Cookie', session.cookie).expect(200)).body.user).toBeNull();
  });
});

describe('console listings', () => {
  it('lists for anonymous callers only the public repositories, with tag count and last push', async () => {
    const res = await request(r.url).get('/api/v1/repositories').expect(200);
    expect(res.body).toEqual({ repositories: [{ name: 'public/app', tagCount: 1, lastPushedAt: expect.any(String) }] });
  });

  it('hides a private repository from anonymous callers in tags (404 NAME_UNKNOWN) and search', async () => {
    const tags = await request(r.url).get('/api/v1/repositories/team/app/tags').expect(404);
    expect(tags.body.errors[0].code).toBe('NAME_UNKNOWN');
    const search = await request(r.url).get('/api/v1/search?q=app').expect(200);
    expect(search.body.results.map((hit: { repository: string }) => hit.repository)).toEqual(['public/app']);
  });

  it('lists what a signed-in user may pull, in pages of n with next', async () => {
    const session = await signIn(ALICE.user, ALICE.password);
    const first = await request(r.url).get('/api/v1/repositories?n=2').set('Cookie', session.cookie).expect(200);
    expect(first.body.repositories.map((x: { name: string }) => x.name)).toEqual(['public/app', 'team/app']);
    expect(first.body.next).toBe('team/app');
    const second = await request(r.url).get(`/api/v1/repositories?n=2&last=${first.body.next}`).set('Cookie', session.cookie).expect(200);
    expect(second.body).toEqual({ repositories: [{ name: 'team/multi', tagCount: 3, lastPushedAt: expect.any(String) }] });
  });

  it('lists every repository for an admin', async () => {
    const session = await signIn(ROOT.user, ROOT.password);
    const res = await request(r.url).get('/api/v1/repositories').set('Cookie', session.cookie).expect(200);
    expect(res.body.repositories.map((x: { name: string }) => x.name)).toEqual(['public/app', 'secret/app', 'team/app', 'team/multi']);
  });

  it("lists a repository's tags with digest, media type, size with its blobs, platforms and times", async () => {
    const session = await signIn(ALICE.user, ALICE.password);
    const res = await request(r.url).get('/api/v1/repositories/team/app/tags?n=1').set('Cookie', session.cookie).expect(200);
    expect(res.body).toEqual({
      name: 'team/app',
      tags: [
        {
          tag: 'v1',
          digest: team.v1.digest,
          mediaType: team.v1.mediaType,
          size: team.v1.body.length + team.configSize + team.layerSize,
          platforms: ['linux/amd64'],
          pushedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
          lastPulledAt: null,
        },
      ],
      next: 'v1',
    });
    const rest = await request(r.url).get('/api/v1/repositories/team/app/tags?n=1&last=v1').set('Cookie', session.cookie).expect(200);
    expect(rest.body.tags.map((t: { tag: string }) => t.tag)).toEqual(['v2']);
    expect(rest.body.next).toBeUndefined();
  });

  it("lists an index's platforms and counts its children in its size", async () => {
    const session = await signIn(ALICE.user, ALICE.password);
    const res = await request(r.url).get('/api/v1/repositories/team/multi/tags').set('Cookie', session.cookie).expect(200);
    const byTag = Object.fromEntries(res.body.tags.map((t: { tag: string }) => [t.tag, t]));
    expect(byTag.multi.platforms.sort()).toEqual(['linux/amd64', 'linux/arm64']);
    expect(byTag.multi.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(byTag.multi.size).toBeGreaterThan(byTag['amd64-only'].size + byTag['arm64-only'].size);
  });

  it('refuses a repository name the grammar does not allow', async () => {
    await request(r.url).get('/api/v1/repositories/Team/App/tags').expect(400);
  });
});

/** An open live-feed stream: what it received so far. */
interface Feed {
  status: number;
  text: () => string;
  waitFor(predicate: (text: string) => boolean, ms?: number): Promise<void>;
  close(): void;
}

function openFeed(cookie?: string): Promise<Feed> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${r.url}/api/v1/events`, { headers: cookie ? { Cookie: cookie } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', () => undefined);
      resolve({
        status: res.statusCode ?? 0,
        text: () => text,
        async waitFor(predicate, ms = 10_000) {
          const until = Date.now() + ms;
          while (!predicate(text)) {
            if (Date.now() > until) throw new Error(`the feed did not deliver in time; it received:\n${text}`);
            await new Promise((tick) => setTimeout(tick, 50));
          }
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

describe('the live feed', () => {
  it('delivers a private push to an authorized stream and not to an anonymous one; heartbeats; caps streams', async () => {
    const session = await signIn(ALICE.user, ALICE.password);
    const alice = await openFeed(session.cookie);
    const anonymous = await openFeed();
    try {
      expect(alice.status).toBe(200);
      await alice.waitFor((t) => t.startsWith('retry: 3000\n\n'));
      await anonymous.waitFor((t) => t.includes(': heartbeat\n\n'));

      const pushed = await pushImage('team/app', 'live');
      // A public push beside the private one. The two repositories' events may come in either order (the relay
      // publishes slice by slice, and gathers kicks), but once Alice's stream has both, the feed has handed both to
      // every stream: the anonymous one has had its chance to receive the private push.
      const later = await pushImage('public/app', 'live');
      await r.registry.flushEvents();

      await alice.waitFor((t) => t.includes(later.manifest.digest) && t.includes(pushed.manifest.digest));
      const frame = alice
        .text()
        .split('\n\n')
        .find((f) => f.includes('event: io.lading.manifest.pushed') && f.includes(pushed.manifest.digest));
      expect(frame).toBeDefined();
      const lines = frame!.split('\n');
      const event = JSON.parse(lines.find((l) => l.startsWith('data: '))!.slice(6));
      expect(lines).toContain(`id: ${event.id}`);
      expect(event.partitionkey).toBe('team/app');

      await anonymous.waitFor((t) => t.includes(later.manifest.digest));
      expect(anonymous.text()).not.toContain('team/app');
      expect(anonymous.text()).not.toContain(pushed.manifest.digest);

      const third = await openFeed();
      const refused = await openFeed();
      try {
        expect(third.status).toBe(200);
        expect(refused.status).toBe(429);
        await refused.waitFor((t) => t.includes('TOOMANYREQUESTS'));
      } finally {
        third.close();
        refused.close();
      }
    } finally {
      alice.close();
      anonymous.close();
    }
  }, 30_000);

  it('frees a stream when its client goes away', async () => {
    /** A stream, once the server has noticed that earlier ones went away (it hears a close a moment later). */
    async function openWhenFree(): Promise<Feed> {
      for (let attempt = 0; attempt < 100; attempt++) {
        const feed = await openFeed();
        if (feed.status === 200) return feed;
        feed.close();
        await new Promise((tick) => setTimeout(tick, 50));
      }
      throw new Error('a closed stream was never freed');
    }
    const feeds = [await openWhenFree(), await openWhenFree(), await openWhenFree()];
    const full = await openFeed();
    full.close();
    expect(full.status).toBe(429);
    feeds.pop()!.close();
    const freed = await openWhenFree();
    for (const feed of [...feeds, freed]) feed.close();
  });
});

describe('the console with auth off', () => {
  let open: ServedRegistry;

  beforeAll(async () => {
    open = await serveEmbeddedRegistry({ auth: { enabled: false }, admin: ROOT });
    const config = makeBlob(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const layer = makeBlob(100);
    expect(await pushThroughClient(open.client, 'team/app', 'v1', imageManifest(config, [layer]), [config, layer])).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await open?.close();
  });

  it('says that auth is off and nobody is signed in', async () => {
    const res = await request(open.url).get('/ui/api/session').expect(200);
    expect(res.body).toEqual({ user: null, admin: false, adminOf: [], csrf: null, auth: false });
  });

  it('refuses a sign-in with 400: there is nothing to sign in to', async () => {
    const res = await request(open.url).post('/ui/api/session').send({ username: 'someone', password: 'anything-at-all' }).expect(400);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it("keeps the admin API behind an administrator's credentials: auth off opens the registry, not its administration", async () => {
    await request(open.url).get('/admin/v1/users').expect(401);
    await request(open.url).get('/admin/v1/audit').expect(401);
    await request(open.url).post('/admin/v1/users').send({ name: 'mallory', password: 'mallory-password' }).expect(401);
    const users = await request(open.url).get('/admin/v1/users').set('Authorization', basic(ROOT.user, ROOT.password)).expect(200);
    expect(users.body.users.map((u: { name: string }) => u.name)).toEqual([ROOT.user]);
  });

  it('lists every repository and its tags to anyone', async () => {
    const repositories = await request(open.url).get('/api/v1/repositories').expect(200);
    expect(repositories.body.repositories.map((x: { name: string }) => x.name)).toEqual(['team/app']);
    const tags = await request(open.url).get('/api/v1/repositories/team/app/tags').expect(200);
    expect(tags.body.tags.map((t: { tag: string }) => t.tag)).toEqual(['v1']);
  });
});
