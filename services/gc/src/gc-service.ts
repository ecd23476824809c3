/**
 * The gc service's HTTP face: `/healthz`, `/readyz`, `/gc/status` (queue figures and counters as JSON) and
 * `/gc/dry-run` (what a collection would delete now and why; `?all=1` includes reviews not yet due), for operators
 * inside the network; and the collector's admin routes (gc-admin-api.ts: status with the collections asked for, dry
 * run, collect now) at `INTERNAL_GC_ADMIN_PATH`, for the admin API alone (`adminCallGuard`): the auth service
 * forwards `/admin/v1/gc/...` there once it has checked the admin. Its metrics are the process's, on the debug port
 * of @lading/telemetry (`lading_gc_*`).
 */
import type { Express } from 'express';
import { adminCallGuard, createServiceApp, finishServiceApp } from '@lading/http';
import { INTERNAL_GC_ADMIN_PATH } from '@lading/oci';
import { type Database, pingDatabase } from '@lading/metadata';
import type { BlobStore } from '@lading/storage';
import type { Logger } from '@lading/telemetry';
import { createGcAdminRouter } from './gc-admin-api';
import { planCollection } from './gc-plan';
import type { GcWorker } from './gc-worker';

/** What the gc service's app is built from. */
export interface GcServiceDeps {
  db: Database;
  store: BlobStore;
  worker: GcWorker;
  logger: Logger;
  /** `upstreams.secret`, shared with the auth service: without it the admin routes answer every call 401. */
  adminSecret: string | undefined;
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
  app.use(INTERNAL_GC_ADMIN_PATH, adminCallGuard(deps.adminSecret), createGcAdminRouter({ db, worker }));
  return finishServiceApp(app, deps.logger);
}
