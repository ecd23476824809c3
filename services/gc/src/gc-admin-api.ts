/**
 * The collector's admin routes, mounted by a process that runs a collector under the admin API's guard
 * (`/admin/v1/gc`, admins only): `GET /dry-run` (what a collection would delete now and why; `?all=1` includes
 * reviews not yet due) and `POST /collect` (run a collection now, answer what it did). The embedded registry mounts
 * them so that `garbage-collect --registry` collects through the process that holds the data; a distributed gc
 * service answers the same report at its own `GET /gc/dry-run`.
 */
import express, { Router } from 'express';
import type { SqlExecutor } from '@lading/metadata';
import { OciError } from '@lading/oci';
import { GcCollection, collectNow } from './collect-now';
import { planCollection } from './gc-plan';
import type { GcWorker } from './gc-worker';

/** What the collector's admin routes are built from. */
export interface GcAdminDeps {
  db: SqlExecutor;
  /** The process's collector: a collection asked for runs on it. */
  worker: GcWorker;
}

const FLAGS: Record<string, boolean> = { '1': true, true: true, '0': false, false: false };

/** Reads the `all` query flag: absent is false; anything but 1/true/0/false is a 400. */
function allFlag(value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value === 'string' && Object.hasOwn(FLAGS, value)) return FLAGS[value];
  throw new OciError('UNSUPPORTED', 'all must be 1, true, 0 or false', undefined, { status: 400 });
}

/** Creates the collector's admin router (authentication is the mounting admin API's). */
export function createGcAdminRouter(deps: GcAdminDeps): Router {
  const router = express.Router();
  // One collection at a time, and a request never gets the result of a run that started before it: it waits for the
  // next run, which every request arriving meanwhile shares (so requests queue at most one run).
  let current: Promise<GcCollection> | null = null;
  let next: Promise<GcCollection> | null = null;
  function requestCollection(): Promise<GcCollection> {
    if (!current) {
      current = collectNow(deps.worker).finally(() => {
        current = null;
      });
      return current;
    }
    next ??= current
      .catch(() => undefined)
      .then(() => {
        next = null;
        return requestCollection();
      });
    return next;
  }
  router.get('/dry-run', async (req, res) => {
    res.json(await planCollection(deps.db, deps.worker.settings, { includeNotDue: allFlag(req.query.all) }));
  });
  router.post('/collect', async (_req, res) => {
    res.json(await requestCollection());
  });
  return router;
}
