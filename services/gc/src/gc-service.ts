/**
 * The gc service's HTTP face: `/healthz`, `/readyz`, `/gc/status` (queue figures and counters as JSON) and
 * `/gc/dry-run` (what a collection would delete now and why; `?all=1` includes reviews not yet due). Its metrics
 * are the process's, on the debug port of @lading/telemetry (`lading_gc_*`).
 */
import type { Express } from 'express';
import { createServiceApp, finishServiceApp } from '@lading/http';
import { type Database, pingDatabase } from '@lading/metadata';
import type { BlobStore } from '@lading/storage';
import type { Logger } from '@lading/telemetry';
import { planCollection } from './gc-plan';
import type { GcWorker } from './gc-worker';

/** What the gc service's app is built from. */
export interface GcServiceDeps {
  db: Database;
  store: BlobStore;
  worker: GcWorker;
  logger: Logger;
}

/** Creates the gc service's express app (the worker runs on its own; the app only reports on it). */
export function createGcService(deps: GcServiceDeps): Express {
  const { db, store, worker } = deps;
  const app = createServiceApp(async () => {
    await pingDatabase(db);
    await store.ping();
  });
  app.get('/gc/status', async (_req, res, next) => {
    try {
      res.json({ queues: await worker.queueStats(), counters: worker.counters });
    } catch (err) {
      next(err);
    }
  });
  app.get('/gc/dry-run', async (req, res, next) => {
    try {
      const all = req.query.all === '1' || req.query.all === 'true';
      res.json(await planCollection(db, worker.settings, { includeNotDue: all }));
    } catch (err) {
      next(err);
    }
  });
  return finishServiceApp(app, deps.logger);
}
