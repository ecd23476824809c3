/**
 * The console behind the distributed gateway: the auth service and two manifest replicas each reached over HTTP, a
 * real Kafka broker. The gateway signs the console in through the auth service, turns the session cookie into
 * tokens through the public token endpoint (it holds no database), and proxies the listings and the live feed; each
 * manifest replica hears every event on Kafka in a consumer group of its own, and sends each stream what its caller
 * may pull.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashPassword } from '@lading/access';
import { createAuthService } from '@lading/auth';
import { type EventBus, type LadingEvent, createKafkaBus } from '@lading/events';
import { authorizationFromConfig, createGateway, createSessionTokens, createUpstreamProxy, exchangeOverHttp, type UpstreamProxy } from '@lading/gateway';
import { createManifestService } from '@lading/manifest';
import * as meta from '@lading/metadata';
import { type TestDeps, createTestDeps, infraSettings } from '@lading/testing';

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A manifest.pushed event of `repository`, as the relay publishes it. */
function pushedEvent(repository: string): LadingEvent {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source: '//test/lading/manifest',
    type: 'io.lading.manifest.pushed',
    subject: `${repository}@sha256:${'a'.repeat(64)}`,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    partitionkey: repository,
    sequence: '1'.padStart(20, '0'),
    data: {
      repository, namespace: '', digest: `sha256:${'a'.repeat(64)}`, mediaType: null, artifactType: null, size: null, tag: null, previousDigest: null,
      references: [], subject: null, fromRepository: null, proxy: null, actor: { name: null, type: 'anonymous' }, request: null,
    },
  } as LadingEvent;
}

/** An open live-feed stream: what it received so far. */
interface Feed {
  status: number;
  text: () => string;
  close(): void;
}

function openFeed(url: string, cookie?: string): Promise<Feed> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/api/v1/events`, { headers: cookie ? { Cookie: cookie } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', () => undefined);
      resolve({ status: res.statusCode ?? 0, text: () => text, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 30_000, tick?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await tick?.();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('the console behind the distributed gateway', () => {
  const secret = randomBytes(32).toString('base64url');
  const topic = `lading-console-${randomUUID()}`;
  const brokers = infraSettings().kafkaBrokers;
  let deps: TestDeps;
  const servers: http.Server[] = [];
  const proxies: UpstreamProxy[] = [];
  const buses: EventBus[] = [];
  let gateway: string;
  let publisher: EventBus;

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true }, upstreams: { secret } });
    const { db, config, logger } = deps;
    const auth = createAuthService({ db, config, logger });
    const authApp = await listen(auth.app as http.RequestListener);
    servers.push(authApp.server);
    const manifestUrls: string[] = [];
    for (let replica = 0; replica < 2; replica++) {
      const bus = await createKafkaBus({ brokers, topic, partitions: 1, clientId: `lading-console-test-${replica}` });
      buses.push(bus);
      const manifest = await listen(createManifestService({ db, config, logger, events: deps.events, feed: bus }) as http.RequestListener);
      servers.push(manifest.server);
      manifestUrls.push(manifest.url);
    }
    publisher = buses[0];
    const proxy = (service: string, urls: string[], principalSecret?: string) => {
      const p = createUpstreamProxy({ service, urls, headersTimeoutMs: 10_000, logger, principalSecret });
      proxies.push(p);
      return p.handler;
    };
    const app = createGateway({
      dispatch: { blob: proxy('blob', manifestUrls), manifest: proxy('manifest', manifestUrls, secret), auth: proxy('auth', [authApp.url]) },
      authorize: authorizationFromConfig(config, () => auth.keys.verificationKeys()),
      sessions: createSessionTokens(exchangeOverHttp([authApp.url], config.auth.service, 5_000)),
      logger,
    });
    const listening = await listen(app as http.RequestListener);
    servers.push(listening.server);
    gateway = listening.url;

    await meta.createUser(db, 'alice', await hashPassword('alice-password'), false);
    await meta.upsertNamespace(db, 'public', true);
    await meta.upsertNamespace(db, 'team', false);
    await meta.addGrant(db, 'team', 'user', 'alice', 'pull');
    for (const name of ['public/tool', 'team/tool']) await meta.ensureRepository(db, name);
  }, 60_000);

  afterAll(async () => {
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(buses.map((bus) => bus.close()));
    await deps?.close();
  });

  async function signIn(): Promise<string> {
    const res = await fetch(`${gateway}/ui/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'alice-password' }) });
    expect(res.status).toBe(200);
    return res.headers.get('set-cookie')!.split(';')[0];
  }

  it('authorizes the listings with the session cookie through the token endpoint', async () => {
    const cookie = await signIn();
    const mine = await fetch(`${gateway}/api/v1/repositories`, { headers: { cookie } });
    expect(((await mine.json()) as { repositories: Array<{ name: string }> }).repositories.map((r) => r.name)).toEqual(['public/tool', 'team/tool']);
    const anonymous = await fetch(`${gateway}/api/v1/repositories`);
    expect(((await anonymous.json()) as { repositories: Array<{ name: string }> }).repositories.map((r) => r.name)).toEqual(['public/tool']);
    const session = await fetch(`${gateway}/ui/api/session`, { headers: { cookie } });
    expect(await session.json()).toMatchObject({ user: 'alice', auth: true });
  });

  it('sends a private event from Kafka to the authorized streams on both replicas, and not to an anonymous one', async () => {
    const cookie = await signIn();
    // The proxy takes the replicas in turn: two streams land on both.
    const alice = [await openFeed(gateway, cookie), await openFeed(gateway, cookie)];
    const anonymous = await openFeed(gateway);
    const all = [...alice, anonymous];
    try {
      expect(all.map((f) => f.status)).toEqual([200, 200, 200]);
      // A new consumer group starts at the newest offset once Kafka has assigned it its partitions: warm up with
      // public events until every stream hears them.
      await until(() => all.every((f) => f.text().includes('public/tool')), 'every stream to hear a public event', 45_000, () => publisher.publish([pushedEvent('public/tool')]));
      const secretEvent = pushedEvent('team/tool');
      await publisher.publish([secretEvent]);
      const marker = pushedEvent('public/tool');
      await publisher.publish([marker]);
      await until(() => all.every((f) => f.text().includes(marker.id)), 'the marker on every stream');
      for (const feed of alice) expect(feed.text()).toContain(`id: ${secretEvent.id}`);
      expect(anonymous.text()).not.toContain(secretEvent.id);
      expect(anonymous.text()).not.toContain('team/tool');
    } finally {
      for (const feed of all) feed.close();
    }
  }, 90_000);
});
