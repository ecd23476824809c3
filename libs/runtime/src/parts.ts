/**
 * The real parts a process runs on, opened from its configuration: the same code for the embedded mode (PGlite,
 * filesystem, in-process bus) and the distributed mode (Postgres, S3, Kafka); only the configuration differs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { LadingConfig, durationMs } from '@lading/config';
import {
  EventBus,
  OutboxContext,
  createOutboxPruner,
  createOutboxRelay,
  createUuidV7Generator,
  openBus,
  readOutboxGauges,
} from '@lading/events';
import { Database, MigrationReport, applyMigrations, countOpenUploads, openDatabase, verifySchema } from '@lading/metadata';
import { BlobStore, openBlobStore } from '@lading/storage';
import { HttpApp, localsOf, pathOf, withFront } from '@lading/http';
import { RouteMatch, matchRoute } from '@lading/oci';
import { createHttpTelemetry, createRegistryMetrics } from '@lading/telemetry';
import type { Logger, RegistryMetrics, StopObserving } from '@lading/telemetry';
import type { Telemetry } from '@lading/telemetry/start';
import { lockEmbeddedData } from './data-dir-lock';
import { REGISTRY_MIGRATIONS } from './migrations';
import { RunningOutboxPruner, RunningOutboxRelay, runOutboxPruner, runOutboxRelay } from './outbox-loops';

/** How often the relay looks for rows nobody kicked it about (a writer kicks it after every commit with events). */
const RELAY_INTERVAL_MS = 1000;
/**
 * How long the relay gathers kicks before it drains: the events of concurrent pushes (one per blob, one or two per
 * manifest) go out in one drain instead of one drain each, at the cost of this much latency on the bus.
 */
const RELAY_KICK_DELAY_MS = 20;

function elapsedMs(since: number): number {
  return Math.round(performance.now() - since);
}

/** What every service factory that writes events is built from (each service adds what only it needs). */
export interface ServiceDeps {
  db: Database;
  config: LadingConfig;
  logger: Logger;
  /** The outbox context of the service's events. */
  events: OutboxContext;
  /** Called after a transaction that wrote events commits (wakes the outbox relay). */
  onEventsCommitted?: () => void;
  /** Where the service records its metrics (`createRegistryMetrics(telemetry.meter)`); without it, none are recorded. */
  metrics?: RegistryMetrics;
}

/**
 * Brings the registry's schema up to date (`REGISTRY_MIGRATIONS`, under the migration lock, refusing a newer schema
 * with `SchemaVersionError`) and logs the versions and what it applied.
 */
export async function migrateSchema(db: Database, logger: Logger): Promise<MigrationReport> {
  const step = performance.now();
  const report = await applyMigrations(db, REGISTRY_MIGRATIONS);
  const { from, to, applied } = report;
  logger.info(
    { applied: applied.length, migrations: applied, from, schemaVersion: to, ms: elapsedMs(step) },
    applied.length ? `applied ${applied.length} migrations: schema version ${from} → ${to}` : `the schema is up to date (version ${to})`,
  );
  return report;
}

/**
 * Prepares the schema of an open database as `database.migrations` says: `auto` migrates it (`migrateSchema`),
 * `verify` only checks that it is this release's schema. Both refuse, with `SchemaVersionError`, a schema newer than
 * the release; `verify` an older one too, naming lading-migrate.
 */
export async function prepareSchema(db: Database, config: LadingConfig, logger: Logger): Promise<void> {
  if (config.database.migrations === 'auto') {
    await migrateSchema(db, logger);
    return;
  }
  const step = performance.now();
  const status = await verifySchema(db, REGISTRY_MIGRATIONS);
  logger.info({ schemaVersion: status.codeVersion, ms: elapsedMs(step) }, `schema version ${status.codeVersion} verified (database.migrations is verify: lading-migrate applies migrations)`);
}

/**
 * Opens the configured database and prepares its schema (`prepareSchema`: migrates it, or only verifies it), saying
 * what it does and how long each step took: the first start of the embedded mode is slow (PGlite creates its
 * database, then every migration runs), and a silent half minute must never be mistaken for a hang.
 */
export async function openMigratedDatabase(config: LadingConfig, logger: Logger): Promise<Database> {
  const driver = config.database.driver;
  logger.info({ driver }, driver === 'pglite' ? 'opening the database (PGlite creates it on the first start: this takes a while)' : 'opening the database');
  const step = performance.now();
  const db = await openDatabase(config, (err) => logger.warn({ err }, 'a pooled database connection failed while idle'));
  logger.info({ driver, ms: elapsedMs(step) }, config.database.migrations === 'verify' ? 'database open; verifying the schema' : 'database open; migrating');
  try {
    await prepareSchema(db, config, logger);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  return db;
}

/** Options of `openProcessParts`. */
export interface ProcessPartsOptions {
  /**
   * The process's metrics: storage calls are timed into them, the relay's publishes counted by event type, and the
   * outbox gauges and relay counters observed from the database and the relay (the one export of `lading_outbox_*`).
   */
  metrics?: RegistryMetrics;
}

/** The parts of a running process. */
export interface ProcessParts {
  config: LadingConfig;
  logger: Logger;
  db: Database;
  store: BlobStore;
  bus: EventBus;
  /** Publishes the outbox: every second and whenever kicked (`onEventsCommitted`). */
  relay: RunningOutboxRelay;
  /** Deletes published outbox rows past `events.retention` (and audit log entries past `audit.retention`), every `events.pruneInterval`. */
  pruner: RunningOutboxPruner;
  /** The metrics the parts record into, to pass on to the services built on them. */
  metrics?: RegistryMetrics;
  /** The outbox context of one service: its CloudEvents source and id generator. */
  eventsFor(service: string): OutboxContext;
  /**
   * What a service that writes events is built from on these parts: the database, its outbox context, a wake-up of
   * the relay after each commit and the metrics (`logger` defaults to the process's).
   */
  serviceDeps(service: string, logger?: Logger): ServiceDeps;
  close(): Promise<void>;
}

/**
 * Opens the database (migrating it), the blob store and the bus, and starts this process's outbox relay and pruner.
 * The local directories among them (PGlite, the filesystem store) are locked first, for as long as the parts are
 * open: a second process on them is refused with `DataDirLockedError` before it opens anything.
 */
export async function openProcessParts(config: LadingConfig, logger: Logger, options: ProcessPartsOptions = {}): Promise<ProcessParts> {
  const { metrics } = options;
  const lock = await lockEmbeddedData(config);
  let db: Database | undefined;
  let store: BlobStore;
  let bus: EventBus;
  try {
    db = await openMigratedDatabase(config, logger);
    let step = performance.now();
    store = await openBlobStore(config, { metrics });
    logger.info({ driver: config.storage.driver, ms: elapsedMs(step) }, 'blob store open');
    step = performance.now();
    bus = await openBus(config, {
      handlerError: (err, event) => logger.error({ err, eventId: event.id }, 'event handler failed'),
      kafkaLog: (level, message, extra) => logger[level]({ kafka: extra }, message),
    });
    logger.info({ bus: config.kafka.brokers.length > 0 ? 'kafka' : 'in-process', ms: elapsedMs(step) }, 'event bus open');
  } catch (err) {
    await db?.close().catch(() => undefined);
    await lock.release();
    throw err;
  }
  const relay = runOutboxRelay(
    createOutboxRelay({
      db,
      bus,
      partitions: config.events.relayPartitions,
      maxAttempts: config.events.maxAttempts,
      onParked: (row) => logger.error({ outbox: row }, 'outbox relay: parked an event the bus refused; an admin must requeue it'),
      onPublished: metrics ? (events) => events.forEach((e) => metrics.notificationsEvents.add(1, { type: e.type })) : undefined,
    }),
    { intervalMs: RELAY_INTERVAL_MS, kickDelayMs: RELAY_KICK_DELAY_MS, onError: (err) => logger.warn({ err }, 'outbox relay: the bus is unavailable; will retry') },
  );
  logger.info({ partitions: config.events.relayPartitions }, 'outbox relay started');
  const observing: StopObserving[] = metrics
    ? [metrics.observeOutbox(() => readOutboxGauges(db)), metrics.observeRelay(() => relay.counters), metrics.observeOpenUploads(() => countOpenUploads(db))]
    : [];
  const pruner = runOutboxPruner(createOutboxPruner({ db, retentionMs: durationMs(config.events.retention), auditRetentionMs: durationMs(config.audit.retention) }), {
    intervalMs: durationMs(config.events.pruneInterval),
    onError: (err) => logger.warn({ err }, 'outbox pruner failed; will retry'),
  });
  const host = config.http.host ? new URL(config.http.host).host : hostname();
  const ids = createUuidV7Generator();
  const eventsFor = (service: string): OutboxContext => ({ source: `//${host}/lading/${service}`, ids, now: () => new Date() });
  return {
    config,
    logger,
    db,
    store,
    bus,
    relay,
    pruner,
    metrics,
    eventsFor,
    serviceDeps: (service, serviceLogger = logger) => ({
      db,
      config,
      logger: serviceLogger,
      events: eventsFor(service),
      onEventsCommitted: () => relay.kick(),
      metrics,
    }),
    async close() {
      for (const stop of observing) stop();
      await pruner.stop();
      await relay.stop();
      await bus.close();
      await db.close();
      await lock.release();
    },
  };
}

/** A process's telemetry once its configuration is loaded (see `wireTelemetry`). */
export interface WiredTelemetry {
  /** The registry metrics, to pass to `openProcessParts` and the services. */
  metrics: RegistryMetrics;
  /**
   * Measures every request of `app` (`registry_http_*`, the route and the OCI error code on its server span) before
   * anything else sees it, the pull fast path included (on node's bare request and response): `app` with the
   * measuring in front.
   */
  measured(app: HttpApp): HttpApp;
  /** Flushes spans and metrics and closes the metrics port (the last step of a process's close). */
  shutdown(): Promise<void>;
}

/**
 * The route of a request, matched once: left in the response's locals, where the gateway's fast path and the
 * services' dispatch take it instead of matching the path again. Undefined outside the table (or for a bad name,
 * which the API answers itself).
 */
function rememberRoute(req: IncomingMessage, res: ServerResponse): RouteMatch | undefined {
  const locals = localsOf(res);
  if (locals.route) return locals.route;
  try {
    const match = matchRoute(pathOf(req.url));
    if (match) locals.route = match;
    return match ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Wires a process's telemetry (started by the first import of its main.ts) to its configuration: serves the
 * Prometheus debug port `telemetry.metricsAddr` (a port already taken is logged and the process goes on without it)
 * and creates the registry metrics.
 */
export async function wireTelemetry(telemetry: Telemetry, config: LadingConfig, logger: Logger): Promise<WiredTelemetry> {
  const addr = config.telemetry.metricsAddr;
  const bound = await telemetry.serveMetrics(addr, (err) => logger.warn({ err, metricsAddr: addr }, 'the metrics port is unavailable; serving without it'));
  if (bound) logger.info({ metricsAddr: `${bound.address}:${bound.port}` }, 'metrics at /metrics');
  const metrics = createRegistryMetrics(telemetry.meter, telemetry.tallies);
  const httpTelemetry = createHttpTelemetry<IncomingMessage>({ metrics, routeOf: (req, res) => rememberRoute(req, res)?.route.name });
  const noop = () => undefined;
  return {
    metrics,
    measured: (app) =>
      withFront(app, (req, res) => {
        httpTelemetry(req, res, noop);
        return false;
      }),
    shutdown: () => telemetry.shutdown(),
  };
}
