/**
 * The collector's worker: claim loops that take due tasks (object deletions, manifest reviews, blob reviews,
 * expired uploads) one transaction each, sleep until the next task falls due (or an event wakes them), back off
 * when the database fails, and run the periodic sweep. Any number of loops, in any number of processes, share the
 * queues through `FOR UPDATE SKIP LOCKED`. Correctness depends on Postgres alone: the bus only wakes loops sooner.
 */
import { EVENT_TYPES, EventBus, LadingEvent } from '@lading/events';
import * as meta from '@lading/metadata';
import type { GcQueueStats } from '@lading/metadata';
import type { BlobStore } from '@lading/storage';
import type { ServiceDeps } from '@lading/runtime';
import { reviewNextBlob } from './blob-review';
import { GcContext, GcHooks } from './gc-context';
import { GcCounters, createCounters, renderPrometheus } from './gc-metrics';
import { GcSettings, gcSettings } from './gc-settings';
import { reviewNextManifest } from './manifest-review';
import { deleteNextObject } from './object-deletion';
import { sweep } from './retention';
import { UPLOAD_PURGE_BATCH, purgeExpiredUploads } from './upload-purge';

/** What a collector is built from. */
export interface GcWorkerDeps extends ServiceDeps {
  store: BlobStore;
  /** When given, events that queue reviews wake the loops when those reviews fall due. */
  bus?: EventBus;
  /** Test hooks (see GcHooks). */
  hooks?: GcHooks;
  /** Overrides the number of loops from `gc.workers`. */
  workers?: number;
}

/** A running (or runnable) collector. */
export interface GcWorker {
  readonly settings: GcSettings;
  readonly counters: GcCounters;
  /** Starts the claim loops (and the bus subscription). */
  start(): void;
  /** Stops the loops, waiting for the steps in progress to finish. */
  stop(): Promise<void>;
  /** Runs one step of each kind now; resolves with true when any found work. */
  step(): Promise<boolean>;
  /** Runs steps until none finds work (at most `maxSteps`); resolves with the number of steps that did. */
  runUntilIdle(maxSteps?: number): Promise<number>;
  /** Runs the periodic sweep now (retention, orphaned referrers, stale pins). */
  sweep(): ReturnType<typeof sweep>;
  /** Wakes sleeping loops. */
  wake(): void;
  /** The queues' figures. */
  queueStats(): Promise<GcQueueStats>;
  /** Counters and queue figures in the Prometheus text format. */
  metricsText(): Promise<string>;
}

const MIN_SLEEP_MS = 50;
const MAX_ERROR_BACKOFF_MS = 30_000;
/** Event types whose changes queue reviews: they wake the loops when those reviews fall due. */
const WAKING_EVENTS = new Set<string>([
  EVENT_TYPES.tagUpdated,
  EVENT_TYPES.tagDeleted,
  EVENT_TYPES.manifestDeleted,
  EVENT_TYPES.manifestPushed,
  EVENT_TYPES.blobUploaded,
  EVENT_TYPES.blobDeleted,
]);

/** Creates a collector; call start() to run its loops. */
export function createGcWorker(deps: GcWorkerDeps): GcWorker {
  const settings = gcSettings(deps.config);
  const counters = createCounters();
  const logger = deps.logger;
  const ctx: GcContext = {
    db: deps.db,
    store: deps.store,
    settings,
    counters,
    logger,
    events: deps.events,
    onEventsCommitted: deps.onEventsCommitted,
    hooks: deps.hooks ?? {},
  };
  // PGlite runs one statement at a time: more loops would only queue behind each other.
  const loops = deps.db.driverName === 'pglite' ? 1 : (deps.workers ?? settings.workers);
  let running = false;
  let loopPromises: Promise<void>[] = [];
  const sleepers = new Set<() => void>();
  let nextUploadPurge = 0;
  let nextSweep = Date.now() + settings.sweepIntervalMs;
  let sweeping = false;
  let unsubscribe: (() => Promise<void>) | null = null;
  let wakeTimer: NodeJS.Timeout | null = null;
  let wakeWanted = 0;
  let stopObservingQueues: (() => void) | undefined;

  function wake(): void {
    for (const resolve of [...sleepers]) resolve();
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      sleepers.add(done);
    });
  }

  function wakeAt(at: number): void {
    wakeWanted = Math.max(wakeWanted, at);
    if (wakeTimer) return;
    const fire = () => {
      wakeTimer = null;
      wake();
      if (wakeWanted > Date.now() + 10 && running) wakeTimer = setTimeout(fire, wakeWanted - Date.now());
      wakeTimer?.unref();
    };
    wakeTimer = setTimeout(fire, Math.max(0, at - Date.now()));
    wakeTimer.unref();
  }

  function onEvent(event: LadingEvent): void {
    if (!running || !WAKING_EVENTS.has(event.type)) return;
    // A review queued now falls due after the delay (plus up to its jitter); the poll covers longer delays.
    if (settings.reviewDelayMs * 1.1 <= settings.pollIntervalMs) wakeAt(Date.now() + Math.ceil(settings.reviewDelayMs * 1.1) + 50);
  }

  /** What was last added to the registry metrics, so that each step adds only what it changed. */
  let reported = { reviews: new Map<string, number>(), deleted: new Map<string, number>(), bytesFreed: 0 };
  const DELETED_KIND: Record<keyof GcCounters['deleted'], string> = { manifests: 'manifest', blobs: 'blob', objects: 'object', uploads: 'upload', tags: 'tag' };

  /** Adds the counters' growth since the last report to the registry metrics (`lading_gc_*_total`). */
  function reportMetrics(): void {
    const metrics = deps.metrics;
    if (!metrics) return;
    const reviews = new Map<string, number>();
    for (const queue of ['blob', 'manifest'] as const) {
      for (const [outcome, n] of Object.entries(counters.reviews[queue])) reviews.set(outcome, (reviews.get(outcome) ?? 0) + n);
    }
    for (const [outcome, n] of reviews) if (n > (reported.reviews.get(outcome) ?? 0)) metrics.gcReviews.add(n - (reported.reviews.get(outcome) ?? 0), { outcome });
    const deleted = new Map<string, number>(Object.entries(counters.deleted).map(([k, n]) => [DELETED_KIND[k as keyof GcCounters['deleted']], n]));
    for (const [kind, n] of deleted) if (n > (reported.deleted.get(kind) ?? 0)) metrics.gcDeleted.add(n - (reported.deleted.get(kind) ?? 0), { kind });
    if (counters.bytesFreed > reported.bytesFreed) metrics.gcBytesFreed.add(counters.bytesFreed - reported.bytesFreed);
    reported = { reviews, deleted, bytesFreed: counters.bytesFreed };
  }

  async function step(): Promise<boolean> {
    try {
      return await stepOnce();
    } finally {
      reportMetrics();
    }
  }

  async function stepOnce(): Promise<boolean> {
    let did = false;
    did = (await deleteNextObject(ctx)) || did;
    did = (await reviewNextManifest(ctx)) || did;
    did = (await reviewNextBlob(ctx)) || did;
    if (Date.now() >= nextUploadPurge) {
      nextUploadPurge = Date.now() + Math.min(settings.pollIntervalMs, settings.uploadTtlMs);
      const purged = await purgeExpiredUploads(ctx);
      if (purged >= UPLOAD_PURGE_BATCH) nextUploadPurge = 0;
      did = purged > 0 || did;
    }
    if (Date.now() >= nextSweep && !sweeping) {
      sweeping = true;
      try {
        nextSweep = Date.now() + settings.sweepIntervalMs;
        await sweep(ctx);
      } finally {
        sweeping = false;
      }
    }
    return did;
  }

  async function loop(): Promise<void> {
    let failures = 0;
    while (running) {
      try {
        const did = await step();
        failures = 0;
        if (did) continue;
        const untilDue = await meta.msUntilNextGcTask(deps.db);
        const untilPurge = Math.max(0, nextUploadPurge - Date.now());
        const wait = Math.min(settings.pollIntervalMs, untilDue ?? Infinity, untilPurge);
        await sleep(Math.max(MIN_SLEEP_MS, wait) + Math.random() * MIN_SLEEP_MS);
      } catch (err) {
        if (!running) break;
        counters.errors++;
        failures++;
        logger.warn({ err }, 'gc: a collector step failed; retrying');
        await sleep(Math.min(MAX_ERROR_BACKOFF_MS, 250 * 2 ** failures));
      }
    }
  }

  return {
    settings,
    counters,
    start() {
      if (running) return;
      running = true;
      loopPromises = Array.from({ length: loops }, () => loop());
      stopObservingQueues ??= deps.metrics?.observeGcQueues(async () => {
        const q = await meta.gcQueueStats(deps.db, settings.overdueMs);
        return { blob: q.blobReviews.size, manifest: q.manifestReviews.size };
      });
      if (deps.bus) {
        deps.bus
          .subscribe(onEvent, { group: 'lading-gc' })
          .then((off) => {
            if (running) unsubscribe = off;
            else void off();
          })
          .catch((err) => logger.warn({ err }, 'gc: cannot subscribe to events; polling only'));
      }
      logger.info({ loops, reviewDelayMs: settings.reviewDelayMs, uploadTtlMs: settings.uploadTtlMs }, 'gc: collector started');
    },
    async stop() {
      if (!running) return;
      running = false;
      stopObservingQueues?.();
      stopObservingQueues = undefined;
      if (wakeTimer) clearTimeout(wakeTimer);
      wakeTimer = null;
      wake();
      await Promise.all(loopPromises);
      loopPromises = [];
      const off = unsubscribe;
      unsubscribe = null;
      await off?.().catch(() => undefined);
    },
    step,
    async runUntilIdle(maxSteps = 100_000) {
      let n = 0;
      nextUploadPurge = 0;
      while (n < maxSteps && (await step())) n++;
      return n;
    },
    sweep: () => sweep(ctx),
    wake,
    queueStats: () => meta.gcQueueStats(deps.db, settings.overdueMs),
    async metricsText() {
      return renderPrometheus(counters, await meta.gcQueueStats(deps.db, settings.overdueMs));
    },
  };
}
