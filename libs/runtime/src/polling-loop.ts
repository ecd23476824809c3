/**
 * The one polling loop of Lading's background workers (outbox relay and pruner, webhook delivery, garbage
 * collection): run a step, sleep, run it again. The step says how long to sleep (or to go on at once); a wake cuts a
 * sleep short, and wakes that arrive while a step runs coalesce into one more step without sleeping; a failed step is
 * reported and retried after an exponential backoff with jitter; stop waits for the steps in flight. Correctness of
 * what a step does never rests on the loop: a wake only makes work happen sooner than the next poll.
 *
 * The loop keeps no clock of its own: time passes only through `sleep`, so a test that injects `sleep` (and `random`)
 * drives every delay, wake and backoff deterministically.
 */

/**
 * A sleep that can be cut short: resolves after `ms`, or as soon as `signal` aborts (the loop aborts it on a wake or
 * a stop). It never rejects.
 */
export type InterruptibleSleep = (ms: number, signal: AbortSignal) => Promise<void>;

/**
 * One pass of a worker's work. Resolves with how long to wait before the next step, in milliseconds: 0 runs it again
 * at once (it found a full batch), nothing waits the loop's idle interval. A rejection is reported and backed off.
 * `worker` is the index (from 0) of the loop running it, when several run the same step.
 */
export type PollingStep = (worker: number) => Promise<number | void>;

/** How a failing step is retried: after `initialMs`, doubling per consecutive failure up to `maxMs`, less jitter. */
export interface BackoffSettings {
  /** The wait after the first failure (before jitter); default 250 ms. */
  initialMs?: number;
  /** The longest wait (before jitter); default 30 s. */
  maxMs?: number;
  /**
   * The share of each wait drawn at random, in [0, 1]: the wait is uniform in `[d * (1 - jitter), d]`, so that
   * workers failing together do not retry together. Default 0.5; 0 keeps the waits exact.
   */
  jitter?: number;
}

/** What a polling loop is built from. */
export interface PollingLoopOptions {
  /** The work of one pass (see PollingStep). */
  step: PollingStep;
  /** How long to sleep when a step resolves with nothing (the poll interval). */
  idleMs: number;
  /** How many loops run the step concurrently (a wake wakes them all); default 1. */
  workers?: number;
  /** Sleep one idle interval before the first step (a schedule), instead of stepping at once on start. */
  delayFirstStep?: boolean;
  /** How failures are retried (see BackoffSettings). */
  backoff?: BackoffSettings;
  /** Told about every failed step and how long the loop waits before the next (not about failures while stopping). */
  onError?: (err: unknown, retryInMs: number) => void;
  /** The sleep between steps; real timers (unref'd, so a sleeping loop never holds the process open) by default. */
  sleep?: InterruptibleSleep;
  /** A number in [0, 1) for the backoff's jitter; Math.random by default. */
  random?: () => number;
}

/** A background loop (see createPollingLoop). */
export interface PollingLoop {
  /** Starts the loops; a no-op while they run. */
  start(): void;
  /** Stops the loops: no step starts after it is called, and it resolves once the steps in flight have finished. */
  stop(): Promise<void>;
  /** Runs the step soon: a sleeping loop steps now, a stepping loop steps again without sleeping; a no-op when stopped. */
  wake(): void;
  /**
   * Runs the step, in the caller's turn and independently of the loops, until it stops asking to go on at once (at most
   * `maxSteps` times); resolves with the number of steps that asked to go on. Rejects with a step's error. For tests
   * and for "run now" admin actions.
   */
  runUntilIdle(maxSteps?: number): Promise<number>;
  /** Whether the loops are started (and not stopped). */
  readonly running: boolean;
}

/** The default sleep: a real timer that does not hold the process open, cleared when the signal aborts. */
export const timerSleep: InterruptibleSleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });

/** The wait before retrying after `failures` consecutive failures (1 for the first). */
export function backoffDelay(failures: number, settings: BackoffSettings = {}, random: () => number = Math.random): number {
  const initialMs = settings.initialMs ?? 250;
  const maxMs = Math.max(initialMs, settings.maxMs ?? 30_000);
  const jitter = Math.min(1, Math.max(0, settings.jitter ?? 0.5));
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(failures - 1, 52));
  return Math.round(base * (1 - jitter * random()));
}

/** One loop's state: a wake pending for its next sleep, and the sleep in progress to cut short. */
interface WorkerState {
  woken: boolean;
  sleeping: AbortController | null;
}

/** One start of the loops: stopping it ends exactly the loops it started, even if the loop is started again. */
interface Run {
  active: boolean;
  workers: WorkerState[];
  done: Promise<void>;
}

/** Creates a polling loop (stopped; call start()). */
export function createPollingLoop(options: PollingLoopOptions): PollingLoop {
  const { step, idleMs } = options;
  const workers = Math.max(1, options.workers ?? 1);
  const sleep = options.sleep ?? timerSleep;
  const random = options.random ?? Math.random;
  let current: Run | null = null;

  function interrupt(state: WorkerState): void {
    state.woken = true;
    state.sleeping?.abort();
  }

  /** Sleeps `ms` unless a wake came since the last step began (it is used up). */
  async function pause(run: Run, state: WorkerState, ms: number): Promise<void> {
    if (state.woken || !run.active) return;
    const sleeping = new AbortController();
    state.sleeping = sleeping;
    try {
      await sleep(ms, sleeping.signal);
    } finally {
      state.sleeping = null;
    }
  }

  async function work(run: Run, state: WorkerState, index: number): Promise<void> {
    if (options.delayFirstStep) await pause(run, state, idleMs);
    let failures = 0;
    while (run.active) {
      state.woken = false;
      let waitMs: number;
      try {
        const next = await step(index);
        failures = 0;
        waitMs = typeof next === 'number' ? Math.max(0, next) : idleMs;
      } catch (err) {
        if (!run.active) break;
        failures++;
        waitMs = backoffDelay(failures, options.backoff, random);
        // A wake that came while the failing step ran does not skip the backoff; one that comes during it still does.
        state.woken = false;
        options.onError?.(err, waitMs);
      }
      if (waitMs > 0) await pause(run, state, waitMs);
    }
  }

  return {
    start() {
      if (current) return;
      const states = Array.from({ length: workers }, (): WorkerState => ({ woken: false, sleeping: null }));
      const run: Run = { active: true, workers: states, done: Promise.resolve() };
      // Set before the first step runs (it starts synchronously), so that a step may wake its own loop.
      current = run;
      run.done = Promise.all(states.map((state, index) => work(run, state, index))).then(() => undefined);
    },
    async stop() {
      const run = current;
      if (!run) return;
      current = null;
      run.active = false;
      run.workers.forEach(interrupt);
      await run.done;
    },
    wake() {
      current?.workers.forEach(interrupt);
    },
    async runUntilIdle(maxSteps = 10_000) {
      let n = 0;
      while (n < maxSteps && (await step(0)) === 0) n++;
      return n;
    },
    get running() {
      return current !== null;
    },
  };
}
