/**
 * A distributed-mode registry on loopback for specs: a gateway in front of one blob service, two manifest service
 * replicas and the auth service, each its own HTTP server with its own connection pool over one throwaway
 * PostgreSQL database, wired as their main.ts files wire them (the principal and admin calls signed with a shared
 * `upstreams.secret`), plus a collector the spec runs by hand, behind the gc service's HTTP face (the admin API's
 * `/admin/v1/gc` goes there). One filesystem store stands in for MinIO.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hashPassword } from '@lading/access';
import { createAuthService, createGcForwardingRouter, createRepositoryForwardingRouter } from '@lading/auth';
import { createBlobService } from '@lading/blob';
import { type RegistryClient, createRegistryClient } from '@lading/client';
import { type LadingConfig, type LadingConfigInput, parseConfig } from '@lading/config';
import { createUuidV7Generator } from '@lading/events';
import { authorizationFromConfig, createGateway, createUpstreamProxy, type UpstreamProxy } from '@lading/gateway';
import { type GcWorker, createGcService, createGcWorker } from '@lading/gc';
import { createServiceClient } from '@lading/http';
import { createManifestService } from '@lading/manifest';
import * as meta from '@lading/metadata';
import { REGISTRY_MIGRATIONS } from '@lading/runtime';
import { type BlobStore, createFilesystemBlobStore } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
import { createThrowawayDatabase } from '@lading/testing';

/** A distributed registry of a spec. */
export interface DistributedRegistry {
  /** The gateway's URL: what clients and lading-admin talk to. */
  url: string;
  /** Each manifest replica's own URL (reached directly, past the gateway). */
  manifestUrls: string[];
  /** The gc service's own URL (reached directly, past the gateway and the admin API). */
  gcUrl: string;
  client: RegistryClient;
  /** A connection pool of the spec's own, for looking at the rows. */
  db: meta.Database;
  store: BlobStore;
  config: LadingConfig;
  /** The collector, not started: the spec runs it (`runUntilIdle`). */
  gc: GcWorker;
  /** Starts another collector with its own connection pool, as a gc process started now would (not started either). */
  newCollector(): Promise<GcWorker>;
  close(): Promise<void>;
}

/** Starts a distributed registry with an admin `admin` (and `config` over the spec defaults). */
export async function serveDistributedRegistry(label: string, admin: { user: string; password: string }, input: LadingConfigInput = {}): Promise<DistributedRegistry> {
  const fresh = await createThrowawayDatabase(label);
  const root = await mkdtemp(path.join(tmpdir(), 'lading-distributed-'));
  const servers: http.Server[] = [];
  const databases: meta.Database[] = [];
  const closers: Array<() => Promise<void>> = [];
  const listen = async (app: http.RequestListener): Promise<string> => {
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const open = async () => {
    const db = await meta.createPgDatabase({ url: fresh.url, poolSize: 8, statementTimeoutMs: 20_000, connectTimeoutMs: 2000 });
    databases.push(db);
    return db;
  };
  const secret = randomBytes(32).toString('base64url');
  const config = parseConfig({
    log: { level: 'silent', access: false },
    gc: { enabled: false, reviewDelay: '1ms', allowShortDelay: true },
    ...input,
    upstreams: { secret },
    data: { dir: root },
  });
  const logger = createLogger({ service: 'test', level: 'silent' });
  const store = await createFilesystemBlobStore(path.join(root, 'blobs'));
  const db = await open();
  await meta.migrate(db, REGISTRY_MIGRATIONS);
  await meta.createUser(db, admin.user, await hashPassword(admin.password), true);
  const events = (service: string, host = 'test') => ({ source: `//${host}/lading/${service}`, ids: createUuidV7Generator(), now: () => new Date() });

  const blobUrl = await listen(createBlobService({ db: await open(), store, config, logger, events: events('blob') }) as http.RequestListener);
  const manifestUrls: string[] = [];
  for (let replica = 0; replica < 2; replica++) {
    manifestUrls.push(await listen(createManifestService({ db: await open(), config, logger, events: events('manifest', `replica-${replica}`), store }) as http.RequestListener));
  }
  const collectors: GcWorker[] = [];
  const newCollector = async () => {
    const worker = createGcWorker({ db: await open(), config, logger, events: events('gc', `gc-${collectors.length}`), store });
    collectors.push(worker);
    return worker;
  };
  const gc = await newCollector();
  // As services/gc/src/main.ts wires it: the first collector behind the gc service's HTTP face.
  const gcUrl = await listen(createGcService({ db: await open(), store, worker: gc, logger, adminSecret: secret }) as http.RequestListener);
  // As services/auth/src/main.ts wires it: repository deletions forwarded to the manifest replicas, the collector's
  // routes to the gc service.
  const manifests = createServiceClient({ service: 'manifest', urls: manifestUrls, headersTimeoutMs: 20_000 });
  closers.push(() => manifests.close());
  const collectorClient = createServiceClient({ service: 'gc', urls: [gcUrl], headersTimeoutMs: 20_000 });
  closers.push(() => collectorClient.close());
  const auth = createAuthService({
    db: await open(),
    config,
    logger,
    adminRouters: {
      '/repositories': createRepositoryForwardingRouter({ manifests, secret, logger }),
      '/gc': createGcForwardingRouter({ collectors: collectorClient, secret, logger }),
    },
  });
  const authUrl = await listen(auth.app as http.RequestListener);
  const proxies: UpstreamProxy[] = [];
  const proxy = (service: string, urls: string[], principalSecret?: string) => {
    const p = createUpstreamProxy({ service, urls, headersTimeoutMs: 20_000, logger, principalSecret });
    proxies.push(p);
    return p.handler;
  };
  const gateway = createGateway({
    dispatch: { blob: proxy('blob', [blobUrl], secret), manifest: proxy('manifest', manifestUrls, secret), auth: proxy('auth', [authUrl]) },
    authorize: authorizationFromConfig(config, () => auth.keys.verificationKeys()),
    logger,
  });
  const url = await listen(gateway as http.RequestListener);
  const client = createRegistryClient({ url, timeoutMs: 20_000 });
  return {
    url,
    manifestUrls,
    gcUrl,
    client,
    db,
    store,
    config,
    gc,
    newCollector,
    async close() {
      for (const worker of collectors) await worker.stop();
      await client.close();
      for (const server of servers) server.closeAllConnections();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
      await Promise.all(proxies.map((p) => p.close()));
      for (const close of closers) await close();
      for (const open of databases) await open.close();
      await fresh.drop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
