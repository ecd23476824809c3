/**
 * `server.readWorkers: auto` (the default): read workers (read-workers.ts) started when pulls keep the main thread
 * busy and stopped after a quiet spell, so that an idle registry pays nothing for them (each costs ~35 MB resident)
 * and a busy one uses more than one core.
 *
 * Once a second the main thread's event-loop utilisation (the share of the second its loop was busy) and each
 * worker's are read. A worker is added when the busiest loop stayed at or above `busyUtilization` for `busyTicks`
 * seconds running, while reads (GET and HEAD) were most of what the main thread served (a worker helps reads only: a
 * 2 GB push keeps the loop busy without calling for one); one is stopped when every loop stayed under
 * `quietUtilization` for `quietTicks` seconds. Never more than `max` (the cores but one).
 *
 * A worker listens beside the main thread (`reusePort`), and the kernel spreads only new connections over the
 * listeners: clients that keep their connections alive would stay on the busy main thread. So for `nudgeTicks`
 * seconds after a worker starts, one in `nudgeEvery` of the reads the main thread answers on a connection it had
 * before the worker started carries `Connection: close`, and the client's next connection may land on the worker.
 * Only those: a connection opened since is where the kernel put it, and closing it again would drain the main thread
 * (the first version did: every reconnection that landed on the main thread was closed again, until all were on the
 * worker).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { type HttpApp, withFront } from '@lading/http';
import type { Logger } from '@lading/telemetry';
import type { ReadWorkers } from './read-workers';

/** When workers are added and stopped. */
export interface ScalingPolicy {
  /** A loop this busy (0..1) counts as busy. */
  busyUtilization: number;
  /** Busy seconds in a row before a worker is added. */
  busyTicks: number;
  /** The share of the main thread's requests that must be reads for a busy loop to call for a worker. */
  readShare: number;
  /** Every loop under this (0..1) counts as quiet. */
  quietUtilization: number;
  /** Quiet seconds in a row before a worker is stopped. */
  quietTicks: number;
  /** Seconds after a worker starts during which the main thread asks some clients to reconnect. */
  nudgeTicks: number;
  /** One read in this many gets `Connection: close` while nudging. */
  nudgeEvery: number;
  /** The length of a tick, ms. */
  tickMs: number;
}

/** The policy the process runs with. */
export const DEFAULT_SCALING: ScalingPolicy = {
  busyUtilization: 0.8,
  busyTicks: 3,
  readShare: 0.8,
  quietUtilization: 0.2,
  quietTicks: 60,
  nudgeTicks: 5,
  nudgeEvery: 16,
  tickMs: 1000,
};

/** One tick's measurements. */
export interface ScalingSample {
  /** The main thread's event-loop utilisation over the tick (0..1). */
  main: number;
  /** Each running worker's. */
  workers: number[];
  /** Requests the main thread's public listener received over the tick, and how many were GET or HEAD. */
  requests: number;
  reads: number;
}

/** What the policy remembers between ticks. */
export interface ScalingState {
  busy: number;
  quiet: number;
  /** Ticks of nudging left. */
  nudging: number;
}

/** What a tick decided. */
export type ScalingStep = 'grow' | 'shrink' | null;

/** A fresh state: nothing seen yet. */
export function initialScalingState(): ScalingState {
  return { busy: 0, quiet: 0, nudging: 0 };
}

/**
 * The policy, one tick at a time: updates `state` with `sample` and says whether to add a worker, stop one, or
 * neither, `running` being the workers running now and `max` the most there may be.
 */
export function decideScaling(state: ScalingState, sample: ScalingSample, running: number, max: number, policy: ScalingPolicy = DEFAULT_SCALING): ScalingStep {
  if (state.nudging > 0) state.nudging--;
  const busiest = Math.max(sample.main, ...sample.workers);
  const readsMostly = sample.requests > 0 && sample.reads >= policy.readShare * sample.requests;
  state.busy = busiest >= policy.busyUtilization && readsMostly ? state.busy + 1 : 0;
  state.quiet = busiest < policy.quietUtilization ? state.quiet + 1 : 0;
  if (state.busy >= policy.busyTicks && running < max) {
    state.busy = 0;
    state.quiet = 0;
    state.nudging = policy.nudgeTicks;
    return 'grow';
  }
  if (state.quiet >= policy.quietTicks && running > 0) {
    state.quiet = 0;
    return 'shrink';
  }
  return null;
}

/** Read workers started and stopped on demand. */
export interface ReadWorkerScaling {
  /** The process's public app, counting what it serves (reads or not) and asking clients to reconnect while nudging. */
  watch(app: HttpApp): HttpApp;
  /**
   * Starts scaling `workers` (started with none, once the port is known): a tick every `policy.tickMs` (unref'd)
   * unless `timer` is false (specs call `tick` themselves).
   */
  start(workers: ReadWorkers, timer?: boolean): void;
  /** Measures the last tick and acts on it; resolves with what it did (nothing before `start`). */
  tick(): Promise<ScalingStep>;
  /** Whether the main thread is asking clients to reconnect now. */
  nudging(): boolean;
  /** Stops the timer (the workers are closed with their `ReadWorkers`). */
  close(): void;
}

/** What the scaling is made with. */
export interface ReadWorkerScalingOptions {
  /** The most workers there may be. */
  max: number;
  logger: Logger;
  policy?: ScalingPolicy;
}

const isRead = (method: string | undefined) => method === 'GET' || method === 'HEAD';

/** The scaling of the read workers: its `watch` wraps the public app now, `start` hands it the workers later. */
export function createReadWorkerScaling(options: ReadWorkerScalingOptions): ReadWorkerScaling {
  const policy = options.policy ?? DEFAULT_SCALING;
  const { logger } = options;
  let workers: ReadWorkers | null = null;
  let timer: NodeJS.Timeout | null = null;
  const state = initialScalingState();
  let requests = 0;
  let reads = 0;
  let mainLast: EventLoopUtilization = performance.eventLoopUtilization();
  const workerLast = new WeakMap<Worker, EventLoopUtilization>();
  let acting = false;
  /** Which start of a worker each connection the main thread served was first seen before (0: before any). */
  const generationOf = new WeakMap<object, number>();
  let generation = 0;

  const utilizationOf = (worker: Worker): number => {
    const last = workerLast.get(worker);
    const now = worker.performance.eventLoopUtilization();
    workerLast.set(worker, now);
    return last ? worker.performance.eventLoopUtilization(now, last).utilization : 0;
  };

  async function tick(): Promise<ScalingStep> {
    if (!workers) return null;
    const now = performance.eventLoopUtilization();
    const main = performance.eventLoopUtilization(now, mainLast).utilization;
    mainLast = now;
    const sample: ScalingSample = { main, workers: workers.threads().map(utilizationOf), requests, reads };
    requests = 0;
    reads = 0;
    // One change at a time: a worker that is starting or stopping is not counted twice.
    if (acting) return null;
    const step = decideScaling(state, sample, workers.threads().length, options.max, policy);
    if (!step) return null;
    acting = true;
    try {
      if (step === 'grow') {
        await workers.add();
        generation++;
        logger.info({ readWorkers: workers.threads().length, utilization: Number(main.toFixed(2)) }, 'pulls keep the main thread busy: started a read worker');
      } else {
        await workers.remove();
        logger.info({ readWorkers: workers.threads().length }, 'quiet: stopped a read worker');
      }
    } catch (err) {
      logger.error({ err }, step === 'grow' ? 'a read worker could not be started' : 'a read worker could not be stopped');
    } finally {
      acting = false;
    }
    return step;
  }

  return {
    start(running, ticking = true) {
      workers = running;
      mainLast = performance.eventLoopUtilization();
      if (!ticking) return;
      timer = setInterval(() => void tick(), policy.tickMs);
      timer.unref();
    },
    watch(app) {
      return withFront(app, (req: IncomingMessage, res: ServerResponse) => {
        requests++;
        const socket = req.socket;
        let seen = generationOf.get(socket);
        if (seen === undefined) generationOf.set(socket, (seen = generation));
        if (!isRead(req.method)) return false;
        reads++;
        if (state.nudging > 0 && seen < generation && reads % policy.nudgeEvery === 0) res.setHeader('Connection', 'close');
        return false;
      });
    },
    tick,
    nudging: () => state.nudging > 0,
    close() {
      if (timer) clearInterval(timer);
    },
  };
}
