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
  /**
   * The sleep between steps, for tests to drive by hand; by default a real timer, unref'd so that a sleeping loop never
   * holds the process open.
   */
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

/** The wait before retrying after `failures` consecutive failures (1 for the first). */
export function backoffDelay(failures: number, settings: BackoffSettings = {}, random: () => number = Math.random): number {
  const initialMs = settings.initialMs ?? 250;
  const maxMs = Math.max(initialMs, settings.maxMs ?? 30_000);
  const jitter = Math.min(1, Math.max(0, settings.jitter ?? 0.5));
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(failures - 1, 52));
  return Math.round(base * (1 - jitter * random()));
}

/** The reason an injected sleep is cut short (the abort reason of its signal; abort() without one builds an error). */
const WOKEN = 'woken';

/**
 * One loop's state. A loop is always either stepping or sleeping (until its run stops): it is written with callbacks,
 * not an async while-loop, so that a wake starts the step at once, in the waker's turn (the relay's kick runs its drain
 * as directly as a call would).
 */
interface WorkerState {
  index: number;
  /** A step is in flight. */
  stepping: boolean;
  /** A wake came while the step ran: the next step follows without sleeping. */
  woken: boolean;
  /** Cancels the sleep in progress (null when not sleeping). */
  cancelSleep: (() => void) | null;
  /** Consecutive failed steps. */
  failures: number;
  /** Called once the loop has stopped (its step in flight, if any, finished). */
  finished: () => void;
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
  const random = options.random ?? Math.random;
  let current: Run | null = null;

  function runStep(run: Run, state: WorkerState): void {
    state.woken = false;
    state.stepping = true;
    let stepped: Promise<number | void>;
    try {
      stepped = step(state.index);
    } catch (err) {
      stepped = Promise.reject(err);
    }
    stepped.then(
      (next) => {
        state.failures = 0;
        afterStep(run, state, typeof next === 'number' ? Math.max(0, next) : idleMs);
      },
      (err: unknown) => {
        if (!run.active) return afterStep(run, state, 0);
        state.failures++;
        const waitMs = backoffDelay(state.failures, options.backoff, random);
        // A wake that came while the failing step ran does not skip the backoff; one that comes during it still does.
        state.woken = false;
        options.onError?.(err, waitMs);
        afterStep(run, state, waitMs);
      },
    );
  }

  function afterStep(run: Run, state: WorkerState, waitMs: number): void {
    state.stepping = false;
    if (!run.active) return state.finished();
    if (waitMs === 0 || state.woken) return runStep(run, state);
    sleepThenStep(run, state, waitMs);
  }

  /** Sleeps `ms`, then steps; interrupt() cuts the sleep short. */
  function sleepThenStep(run: Run, state: WorkerState, ms: number): void {
    if (!options.sleep) {
      const timer = setTimeout(() => {
        state.cancelSleep = null;
        runStep(run, state);
      }, ms);
      timer.unref();
      state.cancelSleep = () => clearTimeout(timer);
      return;
    }
    const sleeping = new AbortController();
    const slept = () => {
      if (state.cancelSleep !== cancel) return; // cut short: interrupt() went on already
      state.cancelSleep = null;
      runStep(run, state);
    };
    const cancel = () => sleeping.abort(WOKEN);
    state.cancelSleep = cancel;
    options.sleep(ms, sleeping.signal).then(slept, slept);
  }

  /** A wake (or a stop): a sleeping loop stops sleeping and, while its run is active, steps now. */
  function interrupt(run: Run, state: WorkerState): void {
    const cancel = state.cancelSleep;
    if (!cancel) {
      if (state.stepping) state.woken = true;
      return;
    }
    state.cancelSleep = null;
    cancel();
    if (run.active) runStep(run, state);
    else state.finished();
  }

  return {
    start() {
      if (current) return;
      const run: Run = { active: true, workers: [], done: Promise.resolve() };
      const stopped: Promise<void>[] = [];
      for (let index = 0; index < workers; index++) {
        const state: WorkerState = { index, stepping: false, woken: false, cancelSleep: null, failures: 0, finished: () => undefined };
        stopped.push(new Promise<void>((resolve) => (state.finished = resolve)));
        run.workers.push(state);
      }
      run.done = Promise.all(stopped).then(() => undefined);
      // Set before the first step runs (it starts synchronously), so that a step may wake its own loop.
      current = run;
      for (const state of run.workers) {
        if (options.delayFirstStep) sleepThenStep(run, state, idleMs);
        else if (run.active) runStep(run, state);
      }
    },
    async stop() {
      const run = current;
      if (!run) return;
      current = null;
      run.active = false;
      for (const state of run.workers) interrupt(run, state);
      await run.done;
    },
    wake() {
      const run = current;
      if (run) for (const state of run.workers) interrupt(run, state);
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

/** A value a process keeps read from the database (see openPolledState). */
export interface PolledState {
  /** Reads it now and puts it in force; reads run one at a time, so an older read never replaces a newer one. */
  refresh(): Promise<void>;
  /** Stops polling; resolves once the read in flight has finished. */
  close(): Promise<void>;
}

/** What a polled state is read with. */
export interface PolledStateOptions {
  /** Reads the state and puts it in force. */
  load: () => Promise<void>;
  /** The poll interval: the bound on a change made by another process reaching this one. */
  pollIntervalMs: number;
  /** Told about a failed poll (the state in force stays, and the poll is retried with backoff). */
  onError: (err: unknown, retryInMs: number) => void;
  /** The poll's sleep, for tests to drive (see createPollingLoop). */
  sleep?: InterruptibleSleep;
}

/**
 * Starts keeping a state read from the database, as the stored proxy rules and the quota coverage are kept: resolves
 * once the first read succeeded (rejecting with its error), then reads again every poll interval until close(), and
 * at once on refresh() (the process that changed the state calls it before answering).
 */
export async function openPolledState(options: PolledStateOptions): Promise<PolledState> {
  let chain: Promise<void> = Promise.resolve();
  function refresh(): Promise<void> {
    const run = chain.then(options.load);
    chain = run.catch(() => undefined);
    return run;
  }
  await refresh();
  const loop = createPollingLoop({ step: () => refresh(), idleMs: options.pollIntervalMs, delayFirstStep: true, sleep: options.sleep, onError: options.onError });
  loop.start();
  return {
    refresh,
    async close() {
      await loop.stop();
      await chain;
    },
  };
}
