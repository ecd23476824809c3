/**
 * The embedded registry: every service in one process, the gateway dispatching to the services' apps mounted in
 * the same process. With the default configuration its parts are PGlite, the filesystem and the in-process bus
 * under one data directory; the same wiring runs on Postgres, S3 and Kafka when the configuration says so.
 */
import { tmpdir } from 'node:os';
import { startSecretCipher } from '@lading/access';
import type { LadingConfig } from '@lading/config';
import { bootstrapAdmin, createAuthService, passwordPoolFromConfig, sealSigningKeys } from '@lading/auth';
import { createBlobService } from '@lading/blob';
import { createPullThrough } from './pull-through';
import { sealStoredProxyPasswords } from '@lading/upstream';
import type { EventBus } from '@lading/events';
import { type ServiceDispatch, authorizationFromConfig, consoleSiteFromConfig, createGateway, createSessionTokens, rateLimiterFromConfig, withConfiguredMirror } from '@lading/gateway';
import { GcWorker, createGcAdminRouter, createGcWorker } from '@lading/gc';
import type { HttpApp } from '@lading/http';
import { createManifestService, createRepositoryAdminRouter, startPullAudit } from '@lading/manifest';
import { type Database, findRepository } from '@lading/metadata';
import { type RunningDatabaseMaintenance, ladingVersion, openProcessParts, openProxyRules, openQuotaCoverage, startDatabaseMaintenance } from '@lading/runtime';
import type { BlobStore } from '@lading/storage';
import type { Logger, RegistryMetrics } from '@lading/telemetry';
import { RunningWebhookDelivery, startWebhookDelivery } from '@lading/webhooks-service';
import { createBackupRouter } from './backup/backup-api';

/** A running embedded registry. */
export interface EmbeddedRegistry {
  app: HttpApp;
  db: Database;
  store: BlobStore;
  bus: EventBus;
  /**
   * The in-process garbage collector (running unless `gc.enabled` is false; admins run it now at /admin/v1/gc/collect).
   * A backup (/admin/v1/backup) holds its object deletions while it copies.
   */
  gc: GcWorker;
  /** The in-process webhook delivery (null when `webhooks.enabled` is false). */
  webhooks: RunningWebhookDelivery | null;
  /** The PGlite database's vacuum-and-analyze loop (null on PostgreSQL, or when `database.maintenanceInterval` is 0s). */
  maintenance: RunningDatabaseMaintenance | null;
  /** Every route of the admin API, `METHOD /admin/v1/...`. */
  adminRoutes: readonly string[];
  /**
   * The services' own apps behind the gateway, which the read workers reach over loopback as the distributed
   * gateway reaches its services (read-workers.ts); they authorize nothing themselves.
   */
  services: ServiceDispatch;
  /** Whether pull-through caching covers a repository (config or stored rules). */
  isProxied(repository: string): boolean;
  /** Counts pulls served elsewhere in the process (the read workers' caches) in the audit trail; none when audit is off. */
  notePulls(principal: string, repository: string, count: number): void;
  /**
   * Publishes every pending outbox event now and, on the in-process bus, waits until every handler has had them
   * (tests use it to observe events deterministically: the relay may be gathering kicks when it is called).
   */
  flushEvents(): Promise<number>;
  /** Writes the pending last-pulled times of proxied manifests now (tests use it instead of waiting a flush). */
  flushPulls(): Promise<number>;
  /** Writes the pulls the audit trail counted so far as one batch now (tests use it instead of waiting a window). */
  flushPullAudit(): Promise<number>;
  close(): Promise<void>;
}

/** Builds the embedded registry from its configuration. */
export async function createEmbeddedRegistry(config: LadingConfig, logger: Logger, options: { metrics?: RegistryMetrics; stopping?: AbortSignal } = {}): Promise<EmbeddedRegistry> {
  const { metrics } = options;
  const parts = await openProcessParts(config, logger, { metrics });
  // What is started is stopped again when a later step fails (a wrong secrets key, say), so that a failed start lets
  // go of the data directory's lock and the hashing workers instead of holding them until the process exits.
  const started: Array<() => Promise<void>> = [() => parts.close()];
  try {
    return await assemble();
  } catch (err) {
    for (const stop of started.reverse()) await stop().catch(() => undefined);
    throw err;
  }

  async function assemble(): Promise<EmbeddedRegistry> {
    const { db, store, bus, relay } = parts;
    // PGlite has no autovacuum: this process vacuums and analyzes its tables, one at a time between requests.
    const maintenance = startDatabaseMaintenance(db, { config, logger: logger.child({ service: 'lading-db-maintenance' }) });
    started.push(async () => maintenance?.stop());
    // The caches hear deletes made by the garbage collector on the bus (API deletes invalidate synchronously).
    const blobDeps = parts.serviceDeps('blob', logger.child({ service: 'lading-blob' }));
    const manifestDeps = parts.serviceDeps('manifest', logger.child({ service: 'lading-manifest' }));
    // Signing keys, webhook secrets and upstream passwords are sealed at rest under secrets.key; stored ones are
    // sealed before serving.
    const secrets = startSecretCipher(config, logger);
    const sealed = await sealStoredProxyPasswords(db, secrets);
    if (sealed > 0) logger.info({ sealed, keyId: secrets.keyId }, 'upstream passwords of stored proxy rules sealed under secrets.key');
    // The proxy rules in force: config ones and those stored through the admin API, polled and refreshed at once
    // when this process's admin API changes them.
    const proxies = await openProxyRules(config, { db, cipher: secrets, logger });
    started.push(() => proxies.close());
    const pullThrough = createPullThrough(blobDeps, manifestDeps, store, proxies);
    started.push(() => pullThrough.close());
    // Which namespaces have a quota: pushes and blob commits no quota covers skip the quota query; the admin API
    // refreshes it when it changes a quota, before answering.
    const quotas = await openQuotaCoverage({ db, logger });
    started.push(() => quotas.close());
    const blob = createBlobService({ ...blobDeps, store, invalidations: bus, pullThrough: pullThrough.blob, proxies, quotas });
    // The audit trail counts every pull in memory and writes a batch per audit.pullWindow (none when audit is off).
    const pullAudit = startPullAudit(manifestDeps);
    started.push(async () => pullAudit?.stop());
    const manifest = createManifestService({ ...manifestDeps, invalidations: bus, feed: bus, stopping: options.stopping, store, pullThrough: pullThrough.manifest, pulls: pullThrough.pulls, pullAudit, proxies, quotas });
    // The collector also answers admins at /admin/v1/gc (mounted in the admin API below): a collection asked for runs
    // here, in the process that holds the data.
    const gc = createGcWorker({ ...parts.serviceDeps('gc', logger.child({ service: 'lading-gc' })), store, bus, proxyRules: proxies });
    // Passwords are hashed in worker threads, never on the event loop every request shares.
    const passwords = passwordPoolFromConfig(config);
    started.push(() => passwords.close());
    // Admins take online backups at /admin/v1/backup: the collector holds object deletions while one is copied.
    const backup = createBackupRouter({
      db,
      store,
      holdObjectDeletions: () => gc.holdObjectDeletions(),
      version: ladingVersion(),
      logger: logger.child({ service: 'lading-backup' }),
      tmpDir: tmpdir(),
    });
    // Admins delete repositories at /admin/v1/repositories; this process's caches forget one before the answer.
    const repositories = createRepositoryAdminRouter({
      ...manifestDeps,
      forgetRepository: (name) => {
        manifest.forgetRepository(name);
        blob.forgetRepository(name);
      },
    });
    const adminRouters = { '/gc': createGcAdminRouter({ db, worker: gc }), '/backup': backup, '/repositories': repositories };
    const auth = createAuthService({
      db,
      config,
      logger: logger.child({ service: 'lading-auth' }),
      passwords,
      secrets,
      adminRouters,
      proxyRulesChanged: () => proxies.refresh(),
      quotasChanged: () => quotas.refresh(),
      events: parts.eventsFor('auth'),
      onEventsCommitted: () => relay.kick(),
    });
    await bootstrapAdmin(db, config, logger, passwords.hash);
    await sealSigningKeys(auth.keys, logger);
    const authorize = authorizationFromConfig(config, () => auth.keys.verificationKeys());
    const gateway = createGateway({
      dispatch: { blob, manifest, auth: auth.app },
      logger,
      accessLog: config.log.access,
      authorize,
      limiter: rateLimiterFromConfig(config),
      trustedProxies: config.http.trustedProxies,
      version: ladingVersion(),
      console: consoleSiteFromConfig(config),
      sessions: createSessionTokens((session, access) => auth.sessionToken(session, access)),
    });
    // `mirror`: un-prefixed pulls (dockerd's registry-mirrors) answered from a proxy namespace, local names first.
    const mirrorNamespace = config.mirror.namespace;
    // It may name a stored rule, so it is checked here rather than in the configuration; while it names no rule,
    // un-prefixed pulls are served as written.
    const mirrorActive = () => mirrorNamespace !== undefined && proxies.namespaceOf(mirrorNamespace)?.namespace === mirrorNamespace;
    if (mirrorNamespace !== undefined && !mirrorActive()) {
      logger.warn({ namespace: mirrorNamespace }, 'mirror.namespace names no proxy rule (config or stored): un-prefixed pulls are served as written until one is added');
    }
    const app = withConfiguredMirror(gateway, config, {
      isActive: mirrorActive,
      isProxied: (repository) => pullThrough.covers(repository),
      isLocal: async (repository) => (await findRepository(db, repository)) !== null,
    });
    if (config.gc.enabled) gc.start();
    started.push(() => gc.stop());
    const webhooks = config.webhooks.enabled ? await startWebhookDelivery({ db, bus, config, logger: logger.child({ service: 'lading-webhooks' }), metrics, secrets }) : null;
    return {
      app,
      db,
      store,
      bus,
      gc,
      webhooks,
      maintenance,
      adminRoutes: auth.adminRoutes,
      services: { blob, manifest, auth: auth.app },
      isProxied: (repository) => pullThrough.covers(repository),
      notePulls: (principal, repository, count) => pullAudit?.note(principal, repository, count),
      async flushEvents() {
        const published = await relay.drain();
        await bus.settled?.();
        return published;
      },
      flushPulls: async () => (pullThrough.pulls ? pullThrough.pulls.flush() : 0),
      flushPullAudit: async () => (pullAudit ? pullAudit.flush() : 0),
      async close() {
        await gc.stop();
        await webhooks?.stop();
        await passwords.close();
        await pullThrough.close();
        await pullAudit?.stop();
        await proxies.close();
        await quotas.close();
        await maintenance?.stop();
        await parts.close();
      },
    };
  }
}
