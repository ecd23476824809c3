/**
 * The embedded registry: every service in one process, on PGlite metadata, filesystem blobs and the in-process
 * bus, all under one data directory. The gateway dispatches to the services' apps mounted in the same process.
 */
import path from 'node:path';
import type { Express } from 'express';
import type { LadingConfig } from '@lading/config';
import { createBlobService } from '@lading/blob';
import { EventBus, createInProcessBus, createOutboxRelay, createUuidV7Generator } from '@lading/events';
import { createGateway } from '@lading/gateway';
import { createManifestService } from '@lading/manifest';
import { Database, createPgliteDatabase, migrate } from '@lading/metadata';
import { BlobStore, createFilesystemBlobStore } from '@lading/storage';
import type { Logger } from '@lading/telemetry';

/** A running embedded registry. */
export interface EmbeddedRegistry {
  app: Express;
  db: Database;
  store: BlobStore;
  bus: EventBus;
  /** Publishes every pending outbox event now (tests use it to observe events deterministically). */
  flushEvents(): Promise<number>;
  close(): Promise<void>;
}

/** Builds the embedded registry from its configuration. */
export async function createEmbeddedRegistry(config: LadingConfig, logger: Logger): Promise<EmbeddedRegistry> {
  const dataDir = path.resolve(config.data.dir);
  const db = await createPgliteDatabase(config.database.path ?? path.join(dataDir, 'metadata'));
  await migrate(db);
  const store = await createFilesystemBlobStore(config.storage.root ?? path.join(dataDir, 'blobs'));
  const bus = createInProcessBus((err, event) => logger.error({ err, eventId: event.id }, 'event handler failed'));
  const relay = createOutboxRelay({ db, bus, onError: (err) => logger.warn({ err }, 'outbox relay failed; will retry') });
  const host = config.http.host ? new URL(config.http.host).host : 'localhost';
  const ids = createUuidV7Generator();
  const now = () => new Date();
  const common = { db, config, onEventsCommitted: () => relay.kick() };

  const blob = createBlobService({ ...common, store, logger: logger.child({ service: 'lading-blob' }), events: { source: `//${host}/lading/blob`, ids, now } });
  const manifest = createManifestService({ ...common, logger: logger.child({ service: 'lading-manifest' }), events: { source: `//${host}/lading/manifest`, ids, now } });
  const app = createGateway({ dispatch: { blob, manifest }, logger, accessLog: config.log.access });
  relay.start();

  return {
    app,
    db,
    store,
    bus,
    flushEvents: () => relay.drain(),
    async close() {
      await relay.stop();
      await bus.close();
      await db.close();
    },
  };
}
