/**
 * The collector's admin routes, mounted by a process that runs a collector under the admin API's guard
 * (`/admin/v1/gc`, admins only): `GET /status` (the queues, the collector's counters since the process started, whether
 * a collection is running or waiting, and the last collections asked for here), `GET /dry-run` (what a collection
 * would delete now and why; `?all=1` includes reviews not yet due) and `POST /collect` (run a collection now, answer
 * what it did). The embedded registry mounts
 * them so that `garbage-collect --registry` collects through the process that holds the data; a distributed gc
 * service answers the same report at its own `GET /gc/dry-run`.
 */
import express, { Router } from 'express';
import type { GcQueueStats, SqlExecutor } from '@lading/metadata';
import { OciError } from '@lading/oci';
import { GcCollection, collectNow } from './collect-now';
import type { GcCounters } from './gc-metrics';
import { planCollection } from './gc-plan';
import type { GcWorker } from './gc-worker';

/** What the collector's admin routes are built from. */
export interface GcAdminDeps {
  db: SqlExecutor;
  /** The process's collector: a collection asked for runs on it. */
  worker: GcWorker;
  /** The clock of the collections' times (epoch milliseconds). */
  now?: () => number;
}

/** How many collections `GET /status` remembers. */
export const GC_RUNS_KEPT = 10;

/** A collection asked for through `POST /collect`, as `GET /status` lists it. */
export interface GcRun {
  startedAt: string;
  /** Null while it runs. */
  finishedAt: string | null;
  /** The admin whose request started it (requests that arrive during a run share the next one). */
  requestedBy: string | null;
  outcome: 'running' | 'done' | 'failed';
  deleted?: GcCollection['deleted'];
  bytesFreed?: number;
  storageErrors?: number;
  /** Why it failed (the error's message; the registry's log has the rest). */
  error?: string;
}

/** `GET /admin/v1/gc/status`. */
export interface GcStatus {
  queues: GcQueueStats;
  /** This process's collector since it started (see gc-metrics.ts). */
  counters: GcCounters;
  /** A collection asked for is running now. */
  collecting: boolean;
  /** Another collection waits for the running one (requests that arrived during it share it). */
  collectionQueued: boolean;
  /** The last collections asked for here, newest first, at most GC_RUNS_KEPT (kept in memory: a restart forgets them). */
  runs: GcRun[];
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
  const now = deps.now ?? Date.now;
  const runs: GcRun[] = [];
  async function recordedCollection(admin: string | null): Promise<GcCollection> {
    const run: GcRun = { startedAt: new Date(now()).toISOString(), finishedAt: null, requestedBy: admin, outcome: 'running' };
    runs.unshift(run);
    runs.splice(GC_RUNS_KEPT);
    try {
      const done = await collectNow(deps.worker);
      Object.assign(run, { outcome: 'done', deleted: done.deleted, bytesFreed: done.bytesFreed, storageErrors: done.storageErrors });
      return done;
    } catch (err) {
      Object.assign(run, { outcome: 'failed', error: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      run.finishedAt = new Date(now()).toISOString();
    }
  }
  function requestCollection(admin: string | null): Promise<GcCollection> {
    if (!current) {
      current = recordedCollection(admin).finally(() => {
        current = null;
      });
      return current;
    }
    next ??= current
      .catch(() => undefined)
      .then(() => {
        next = null;
        return requestCollection(admin);
      });
    return next;
  }
  router.get('/status', async (_req, res) => {
    const status: GcStatus = {
      queues: await deps.worker.queueStats(),
      counters: deps.worker.counters,
      collecting: current !== null,
      collectionQueued: next !== null,
      runs,
    };
    res.json(status);
  });
  router.get('/dry-run', async (req, res) => {
    res.json(await planCollection(deps.db, deps.worker.settings, { includeNotDue: allFlag(req.query.all) }));
  });
  router.post('/collect', async (_req, res) => {
    res.json(await requestCollection(typeof res.locals.admin === 'string' ? res.locals.admin : null));
  });
  return router;
}
