/**
 * The collector's worker: claim loops that take due tasks (object deletions, manifest reviews, blob reviews,
 * expired uploads) one transaction each, sleep until the next task falls due (or an event wakes them), back off
 * when the database fails (the polling loop of @lading/runtime), and run the periodic sweep. Any number of loops, in any number of processes, share the
 * queues through `FOR UPDATE SKIP LOCKED`. Correctness depends on Postgres alone: the bus only wakes loops sooner.
 */
import type { ProxyConfig } from '@lading/config';
import { EVENT_TYPES, EventBus, LadingEvent } from '@lading/events';
import * as meta from '@lading/metadata';
import type { GcQueueStats } from '@lading/metadata';
import type { BlobStore } from '@lading/storage';
import { ServiceDeps, createPollingLoop } from '@lading/runtime';
import { reviewNextBlob } from './blob-review';
import { createObjectDeletionHold } from './deletion-hold';
import { GcContext, GcHooks } from './gc-context';
import { GcCounters, createCounters, gcCounterFigures, gcQueueFigures } from './gc-metrics';
import { GcSettings, gcSettings, proxyEvictions } from './gc-settings';
import { reviewNextManifest } from './manifest-review';
import { createQuotaReconciliation } from './quota-reconciliation';
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
  /** The live proxy rules, whose `evictAfter` the sweep follows as they change; `config.proxies` when omitted. */
  proxyRules?: { rules(): readonly ProxyConfig[] };
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
  /** Runs the periodic sweep now (retention, eviction of pull-through caches, orphaned referrers, stale pins). */
  sweep(): ReturnType<typeof sweep>;
  /** Reconciles every namespace quota's usage with the references now; resolves with how many counts were corrected. */
  reconcileQuotas(): Promise<number>;
  /** Wakes sleeping loops. */
  wake(): void;
  /** The queues' figures. */
  queueStats(): Promise<GcQueueStats>;
  /**
   * Holds object deletions until the returned release is called (a backup copying objects; see deletion-hold.ts).
   * Reviews and metadata deletions go on; the held objects' tombstones are retried after the release.
   */
  holdObjectDeletions(): () => void;
}

const MIN_SLEEP_MS = 50;
/** Event types whose changes queue reviews: they wake the loops when those reviews fall due. */
const WAKING_EVENTS = new Set<string>([
  EVENT_TYPES.tagUpdated,
  EVENT_TYPES.tagDeleted,
  EVENT_TYPES.manifestDeleted,
  EVENT_TYPES.manifestPushed,
  EVENT_TYPES.blobUploaded,
  EVENT_TYPES.blobDeleted,
  EVENT_TYPES.repositoryDeleted,
]);

/** Creates a collector; call start() to run its loops. */
export function createGcWorker(deps: GcWorkerDeps): GcWorker {
  const settings = gcSettings(deps.config);
  const { proxyRules } = deps;
  const counters = createCounters();
  const logger = deps.logger;
  const ctx: GcContext = {
    db: deps.db,
    store: deps.store,
    settings,
    evictions: proxyRules ? () => proxyEvictions(proxyRules.rules()) : undefined,
    counters,
    logger,
    events: deps.events,
    onEventsCommitted: deps.onEventsCommitted,
    hooks: deps.hooks ?? {},
    deletionHold: createObjectDeletionHold(),
  };
  // PGlite runs one statement at a time: more loops would only queue behind each other.
  const loops = deps.db.driverName === 'pglite' ? 1 : (deps.workers ?? settings.workers);
  let nextUploadPurge = 0;
  let nextSweep = Date.now() + settings.sweepIntervalMs;
  let sweeping = false;
  const quotas = createQuotaReconciliation({ db: deps.db, logger });
  // Soon after start (a restart may follow deletes), then every interval.
  let nextQuotaReconcile = 0;
  let reconciling = false;
  let unsubscribe: (() => Promise<void>) | null = null;
  let wakeTimer: NodeJS.Timeout | null = null;
  let wakeWanted = 0;

  /**
   * Registers the collector's figures with the registry metrics (read at each collection, so a process whose
   * collector does not run still reports its queues); undefined without metrics.
   */
  function observe(): (() => void) | undefined {
    const metrics = deps.metrics;
    if (!metrics) return undefined;
    const stops = [
      metrics.observeGcQueues(async () => gcQueueFigures(await meta.gcQueueStats(deps.db, settings.overdueMs))),
      metrics.observeGcCounters(() => gcCounterFigures(counters)),
      metrics.observeQuotaUsage(() => quotas.figures()),
    ];
    return () => stops.forEach((stop) => stop());
  }
  let stopObserving = observe();

  function wakeAt(at: number): void {
    wakeWanted = Math.max(wakeWanted, at);
    if (wakeTimer) return;
    const fire = () => {
      wakeTimer = null;
      loop.wake();
      if (wakeWanted > Date.now() + 10 && loop.running) wakeTimer = setTimeout(fire, wakeWanted - Date.now());
      wakeTimer?.unref();
    };
    wakeTimer = setTimeout(fire, Math.max(0, at - Date.now()));
    wakeTimer.unref();
  }

  function onEvent(event: LadingEvent): void {
    if (!loop.running || !WAKING_EVENTS.has(event.type)) return;
    // A deletion the admin's request left pending (`202`) goes on at once rather than at the next poll.
    if (event.type === EVENT_TYPES.repositoryDeleted) loop.wake();
    // A review queued now falls due after the delay (plus up to its jitter); the poll covers longer delays.
    if (settings.reviewDelayMs * 1.1 <= settings.pollIntervalMs) wakeAt(Date.now() + Math.ceil(settings.reviewDelayMs * 1.1) + 50);
  }

  async function step(): Promise<boolean> {
    let did = false;
    // Repository deletions left by an admin's request (large ones, or a process that stopped): a batch at a time. A
    // failing batch (rolled back whole) is retried at the next step and does not hold the other kinds of work up.
    try {
      const deletion = await meta.continueRepositoryDeletion(deps.db, { batchSize: deps.config.gc.repositoryDeletionBatch, reviewDelayMs: settings.reviewDelayMs });
      if (deletion?.finished) logger.info({ repository: deletion.repository, manifests: deletion.manifestsDeleted, blobsQueued: deletion.blobsQueued, batches: deletion.batches }, 'gc: repository deletion finished');
      did = deletion !== null || did;
    } catch (err) {
      counters.errors++;
      logger.warn({ err }, 'gc: a repository deletion batch failed; retrying');
    }
    did = (await deleteNextObject(ctx)) || did;
    did = (await reviewNextManifest(ctx)) || did;
    did = (await reviewNextBlob(ctx)) || did;
    if (Date.now() >= nextUploadPurge) {
      nextUploadPurge = Date.now() + Math.min(settings.pollIntervalMs, settings.uploadTtlMs);
      const purged = await purgeExpiredUploads(ctx);
      if (purged >= UPLOAD_PURGE_BATCH) nextUploadPurge = 0;
      did = purged > 0 || did;
    }
    if (Date.now() >= nextQuotaReconcile && !reconciling) {
      reconciling = true;
      try {
        nextQuotaReconcile = Date.now() + settings.quotaReconcileIntervalMs;
        await quotas.run();
      } finally {
        reconciling = false;
      }
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

  /**
   * One pass of a collector loop: a step, then 0 (go on at once) when it found work, else how long to sleep: until
   * the next task or upload purge falls due, at most the poll interval, with a little jitter so that loops spread.
   */
  async function poll(): Promise<number> {
    if (await step()) return 0;
    const untilDue = await meta.msUntilNextGcTask(deps.db);
    const untilPurge = Math.max(0, nextUploadPurge - Date.now());
    const wait = Math.min(settings.pollIntervalMs, untilDue ?? Infinity, untilPurge);
    return Math.max(MIN_SLEEP_MS, wait) + Math.random() * MIN_SLEEP_MS;
  }

  const loop = createPollingLoop({
    step: poll,
    idleMs: settings.pollIntervalMs,
    workers: loops,
    // Failures back off from half a second to the loop's 30 s.
    backoff: { initialMs: 500 },
    onError: (err) => {
      counters.errors++;
      logger.warn({ err }, 'gc: a collector step failed; retrying');
    },
  });

  return {
    settings,
    counters,
    start() {
      if (loop.running) return;
      loop.start();
      stopObserving ??= observe();
      if (deps.bus) {
        deps.bus
          .subscribe(onEvent, { group: 'lading-gc' })
          .then((off) => {
            if (loop.running) unsubscribe = off;
            else void off();
          })
          .catch((err) => logger.warn({ err }, 'gc: cannot subscribe to events; polling only'));
      }
      logger.info({ loops, reviewDelayMs: settings.reviewDelayMs, uploadTtlMs: settings.uploadTtlMs }, 'gc: collector started');
    },
    async stop() {
      stopObserving?.();
      stopObserving = undefined;
      if (!loop.running) return;
      if (wakeTimer) clearTimeout(wakeTimer);
      wakeTimer = null;
      await loop.stop();
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
    reconcileQuotas: () => quotas.run(),
    wake: () => loop.wake(),
    queueStats: () => meta.gcQueueStats(deps.db, settings.overdueMs),
    holdObjectDeletions: () => ctx.deletionHold.take(),
  };
}
