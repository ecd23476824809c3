/**
 * Quota enforcement in distributed mode (issue 23): 16 clients push images at once into one namespace, each through
 * one of two blob and two manifest service replicas (each replica its own connection pool) over one real PostgreSQL
 * and one store. The namespace ends within its quota plus the documented overshoot (what the other pushes in flight
 * bring), every refusal is a 403 DENIED quota error, and the count equals the usage measured from the references.
 * A replica that caches which namespaces have a quota (its coverage) binds a quota another process sets once its
 * coverage has polled: the documented bound.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createBlobService } from '@lading/blob';
import { createRegistryClient, type RegistryClient } from '@lading/client';
import { parseConfig } from '@lading/config';
import { createUuidV7Generator } from '@lading/events';
import { createManifestService } from '@lading/manifest';
import * as meta from '@lading/metadata';
import { REGISTRY_MIGRATIONS, openQuotaCoverage } from '@lading/runtime';
import { createFilesystemBlobStore } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
import { createThrowawayDatabase, imageManifest, makeBlob, manualSleep } from '@lading/testing';

const PUSHERS = 16;
const LAYER = 10_000;

describe('quotas across two blob and two manifest replicas over one PostgreSQL', () => {
  const servers: http.Server[] = [];
  const databases: meta.Database[] = [];
  const clients: RegistryClient[] = [];
  let dropDatabase: () => Promise<void>;
  let root: string;
  let probe: meta.Database;
  let openReplica: (quotas: meta.QuotaCoverage) => Promise<RegistryClient>;

  async function listen(app: http.RequestListener): Promise<string> {
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  beforeAll(async () => {
    const fresh = await createThrowawayDatabase('quotas_replicas');
    dropDatabase = fresh.drop;
    root = await mkdtemp(path.join(tmpdir(), 'lading-quotas-'));
    const config = parseConfig({ data: { dir: root }, log: { level: 'silent', access: false } });
    const logger = createLogger({ service: 'test', level: 'silent' });
    const store = await createFilesystemBlobStore(path.join(root, 'blobs'));
    const open = async () => {
      const db = await meta.createPgDatabase({ url: fresh.url, poolSize: 8, statementTimeoutMs: 10_000, connectTimeoutMs: 2000 });
      databases.push(db);
      return db;
    };
    probe = await open();
    await meta.migrate(probe, REGISTRY_MIGRATIONS);
    await meta.upsertNamespace(probe, 'team', false);
    openReplica = async (quotas) => {
      const db = await open();
      const events = { source: '//test/lading/manifest', ids: createUuidV7Generator(), now: () => new Date() };
      const client = createRegistryClient({ url: await listen(createManifestService({ db, config, logger, events, quotas }) as http.RequestListener), timeoutMs: 20_000 });
      clients.push(client);
      return client;
    };
    for (let replica = 0; replica < 2; replica++) {
      const db = await open();
      const events = { source: `//test/replica-${replica}`, ids: createUuidV7Generator(), now: () => new Date() };
      const blob = await listen(createBlobService({ db, store, config, logger, events }) as http.RequestListener);
      const manifest = await listen(createManifestService({ db, config, logger, events }) as http.RequestListener);
      // One client per replica pair: blob routes to its blob service, manifest routes to its manifest service.
      clients.push(createRegistryClient({ url: blob, timeoutMs: 20_000 }), createRegistryClient({ url: manifest, timeoutMs: 20_000 }));
    }
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    for (const db of databases) await db.close();
    await dropDatabase?.();
    await rm(root, { recursive: true, force: true });
  });

  it('16 concurrent pushers end within the quota plus the documented overshoot, and the count is the true usage', async () => {
    const images = Array.from({ length: PUSHERS }, (_, i) => {
      const config = makeBlob(`{"os":"linux","pusher":${i},"n":${Math.random()}}`);
      const layer = makeBlob(LAYER);
      return { config, layer, manifest: imageManifest(config, [layer]), bytes: config.size + LAYER };
    });
    const each = Math.max(...images.map((i) => i.bytes));
    const quotaBytes = 8 * each;
    await meta.setNamespaceQuota(probe, 'team', quotaBytes);
    await probe.transaction((tx) => meta.reconcileNamespaceUsage(tx, 'team'));

    // Uploaded while there is room; its manifest comes after the wave.
    const late = makeBlob(`{"os":"linux","late":${Math.random()}}`);
    expect((await clients[2].uploadBlob('team/late', late)).status).toBe(201);
    const results = await Promise.all(
      images.map(async (image, i) => {
        const replica = i % 2;
        const blobs = clients[replica * 2];
        const manifests = clients[replica * 2 + 1];
        const repository = `team/app-${i % 4}`;
        for (const blob of [image.config, image.layer]) {
          // A blob is checked when committed: once the namespace is full, the upload itself may be refused.
          const upload = await blobs.uploadBlob(repository, blob);
          if (upload.status !== 201) return { status: upload.status, error: JSON.parse(upload.body.toString()).errors[0] };
        }
        const answer = await manifests.putManifest(repository, `p${i}`, { mediaType: image.manifest.mediaType, body: image.manifest.body });
        return { status: answer.status, error: answer.status === 201 ? null : JSON.parse(answer.body.toString()).errors[0] };
      }),
    );
    const accepted = results.filter((r) => r.status === 201).length;
    for (const r of results.filter((x) => x.status !== 201)) {
      expect(r.status).toBe(403);
      expect(r.error).toMatchObject({ code: 'DENIED', detail: { namespace: 'team', quotaBytes } });
    }
    const used = await meta.measureNamespaceUsage(probe, 'team');
    // Within the quota, or over it by at most what the other pushes in flight brought (one image each).
    expect(accepted).toBeGreaterThanOrEqual(8);
    expect(used.bytes).toBeLessThanOrEqual(quotaBytes + (PUSHERS - 1) * each);
    expect(used.blobs).toBe(accepted * 2);
    expect(results.filter((r) => r.status === 403).length).toBe(PUSHERS - accepted);
    expect(await meta.countedNamespaceUsage(probe, 'team')).toBe(used.bytes);
    // Full now: the next push is refused, through either replica.
    // A layer the namespace holds already (an accepted push's) adds nothing; the late config is what goes over.
    const held = images[results.findIndex((r) => r.status === 201)].layer;
    const lateManifest = imageManifest(late, [held]);
    expect((await clients[2].uploadBlob('team/late', held)).status).toBe(201);
    const refused = await clients[1].putManifest('team/late', 'x', { mediaType: lateManifest.mediaType, body: lateManifest.body });
    expect(refused.status).toBe(403);
    // No refused push left a manifest behind.
    const manifests = await probe.query<{ n: string }>(`SELECT count(*) AS n FROM manifests`);
    expect(Number(manifests.rows[0].n)).toBe(accepted);
  });

  it("binds a quota another process sets once the replica's coverage has polled, and skips nothing covered before", async () => {
    await meta.upsertNamespace(probe, 'late', false);
    const polls = manualSleep();
    const coverage = await openQuotaCoverage({ db: probe, logger: createLogger({ service: 'test', level: 'silent' }), sleep: polls.sleep });
    try {
      const manifests = await openReplica(coverage);
      // Every image's blobs are uploaded first (the blob replicas here check quotas on every commit).
      const images = new Map<string, ReturnType<typeof imageManifest>>();
      for (const tag of ['v1', 'v2', 'v3', 'v4']) {
        const config = makeBlob(`{"os":"linux","late":${Math.random()}}`);
        const layer = makeBlob(LAYER);
        for (const blob of [config, layer]) expect((await clients[0].uploadBlob('late/app', blob)).status).toBe(201);
        images.set(tag, imageManifest(config, [layer]));
      }
      const push = async (tag: string) => {
        const m = images.get(tag)!;
        return (await manifests.putManifest('late/app', tag, { mediaType: m.mediaType, body: m.body })).status;
      };
      expect(await push('v1')).toBe(201);
      // Another process (the auth service) sets a quota the namespace is already over.
      await meta.setNamespaceQuota(probe, 'late', 1);
      await probe.transaction((tx) => meta.reconcileNamespaceUsage(tx, 'late'));
      // Within the bound the replica has not heard of it: the push is not checked (reconciliation counts it).
      expect(await push('v2')).toBe(201);
      // One poll later it is in force on this replica.
      await polls.step();
      expect(await push('v3')).toBe(403);
      // Removed: the replica's coverage still says "maybe", and the push reads no quota in its transaction.
      await meta.setNamespaceQuota(probe, 'late', null);
      expect(await push('v4')).toBe(201);
    } finally {
      await coverage.close();
    }
  });
});
