/**
 * The real parts a process runs on, opened from its configuration: the same code for the embedded mode (PGlite,
 * filesystem, in-process bus) and the distributed mode (Postgres, S3, Kafka); only the configuration differs.
 */
import { hostname } from 'node:os';
import { LadingConfig, durationMs } from '@lading/config';
import {
  EventBus,
  OutboxContext,
  OutboxPruner,
  OutboxRelay,
  createOutboxPruner,
  createOutboxRelay,
  createUuidV7Generator,
  openBus,
  renderOutboxMetrics,
} from '@lading/events';
import { Database, migrate, openDatabase } from '@lading/metadata';
import { BlobStore, openBlobStore } from '@lading/storage';
import type { Logger } from '@lading/telemetry';

/** What every service factory that writes events is built from (each service adds what only it needs). */
export interface ServiceDeps {
  db: Database;
  config: LadingConfig;
  logger: Logger;
  /** The outbox context of the service's events. */
  events: OutboxContext;
  /** Called after a transaction that wrote events commits (wakes the outbox relay). */
  onEventsCommitted?: () => void;
}

/** The parts of a running process. */
export interface ProcessParts {
  config: LadingConfig;
  logger: Logger;
  db: Database;
  store: BlobStore;
  bus: EventBus;
  relay: OutboxRelay;
  /** Deletes published outbox rows past `events.retention`, every `events.pruneInterval`. */
  pruner: OutboxPruner;
  /** The outbox metrics (backlog, lag, parked, this relay's counters) in Prometheus text, for /metrics. */
  outboxMetrics(): Promise<string>;
  /** The outbox context of one service: its CloudEvents source and id generator. */
  eventsFor(service: string): OutboxContext;
  close(): Promise<void>;
}

/** Opens the database (migrating it), the blob store and the bus, and starts this process's outbox relay and pruner. */
export async function openProcessParts(config: LadingConfig, logger: Logger): Promise<ProcessParts> {
  const db = await openDatabase(config, (err) => logger.warn({ err }, 'a pooled database connection failed while idle'));
  await migrate(db);
  const store = await openBlobStore(config);
  const bus = await openBus(config, {
    handlerError: (err, event) => logger.error({ err, eventId: event.id }, 'event handler failed'),
    kafkaLog: (level, message, extra) => logger[level]({ kafka: extra }, message),
  });
  const relay = createOutboxRelay({
    db,
    bus,
    partitions: config.events.relayPartitions,
    maxAttempts: config.events.maxAttempts,
    onError: (err) => logger.warn({ err }, 'outbox relay: the bus is unavailable; will retry'),
    onParked: (row) => logger.error({ outbox: row }, 'outbox relay: parked an event the bus refused; an admin must requeue it'),
  });
  relay.start();
  const pruner = createOutboxPruner({
    db,
    retentionMs: durationMs(config.events.retention),
    intervalMs: durationMs(config.events.pruneInterval),
    onError: (err) => logger.warn({ err }, 'outbox pruner failed; will retry'),
  });
  pruner.start();
  const host = config.http.host ? new URL(config.http.host).host : hostname();
  const ids = createUuidV7Generator();
  return {
    config,
    logger,
    db,
    store,
    bus,
    relay,
    pruner,
    outboxMetrics: () => renderOutboxMetrics(db, relay.counters),
    eventsFor: (service) => ({ source: `//${host}/lading/${service}`, ids, now: () => new Date() }),
    async close() {
      await pruner.stop();
      await relay.stop();
      await bus.close();
      await db.close();
    },
  };
}
