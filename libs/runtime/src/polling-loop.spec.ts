/**
 * The polling loop on a hand-driven sleep: what it sleeps and when it steps, wakes (during a sleep, during a step,
 * coalesced), backoff with jitter after failures, several workers, stop waiting for the step in flight, and
 * runUntilIdle. One case runs on real timers to show the default sleep is cut short by a wake.
 */
import { InterruptibleSleep, PollingStep, backoffDelay, createPollingLoop } from './polling-loop';

/** A sleep the test ends by hand: records every requested wait, and ends on `elapse()` or when the loop aborts it. */
function manualSleep() {
  const requested: number[] = [];
  let pending: (() => void) | null = null;
  const sleep: InterruptibleSleep = (ms, signal) =>
    new Promise((resolve) => {
      requested.push(ms);
      const done = () => {
        pending = null;
        resolve();
      };
      if (signal.aborted) return done();
      pending = done;
      signal.addEventListener('abort', done, { once: true });
    });
  return {
    sleep,
    requested,
    get sleeping() {
      return pending !== null;
    },
    /** Ends the sleep in progress as if its time had passed. */
    elapse() {
      if (!pending) throw new Error('nothing sleeps');
      pending();
    },
  };
}

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A step the test completes by hand: each call waits until `finish(result)` (or `fail(err)`). */
function manualStep() {
  let calls = 0;
  let current: { resolve: (r: number | void) => void; reject: (err: unknown) => void } | null = null;
  const step: PollingStep = () =>
    new Promise<number | void>((resolve, reject) => {
      calls++;
      current = { resolve, reject };
    });
  return {
    step,
    get calls() {
      return calls;
    },
    get inFlight() {
      return current !== null;
    },
    finish(result?: number) {
      const c = current!;
      current = null;
      c.resolve(result);
    },
    fail(err: unknown) {
      const c = current!;
      current = null;
      c.reject(err);
    },
  };
}

describe('the polling loop', () => {
  it('steps at once on start, sleeps the idle interval after a step that asks nothing, and steps again after it', async () => {
    const clock = manualSleep();
    const work = manualStep();
    const loop = createPollingLoop({ step: work.step, idleMs: 1000, sleep: clock.sleep });
    expect(loop.running).toBe(false);
    loop.start();
    expect(loop.running).toBe(true);
    expect(work.calls).toBe(1);
    work.finish();
    await settle();
    expect(clock.requested).toEqual([1000]);
    expect(work.calls).toBe(1);
    clock.elapse();
    await settle();
    expect(work.calls).toBe(2);
    work.finish();
    await settle();
    await loop.stop();
    expect(loop.running).toBe(false);
  });

  it('goes on without sleeping when the step resolves with 0, and sleeps what the step asks otherwise', async () => {
    const clock = manualSleep();
    const work = manualStep();
    const loop = createPollingLoop({ step: work.step, idleMs: 1000, sleep: clock.sleep });
    loop.start();
    work.finish(0);
    await settle();
    expect(work.calls).toBe(2);
    expect(clock.requested).toEqual([]);
    work.finish(40);
    await settle();
    expect(clock.requested).toEqual([40]);
    await loop.stop();
  });

  it('waits one idle interval before the first step when it runs on a schedule', async () => {
    const clock = manualSleep();
    const work = manualStep();
    const loop = createPollingLoop({ step: work.step, idleMs: 500, sleep: clock.sleep, delayFirstStep: true });
    loop.start();
    await settle();
    expect(work.calls).toBe(0);
    expect(clock.requested).toEqual([500]);
    clock.elapse();
    await settle();
    expect(work.calls).toBe(1);
    work.finish();
    await loop.stop();
  });

  it('steps at once when woken during a sleep', async () => {
    const clock = manualSleep();
    const work = manualStep();
    const loop = createPollingLoop({ step: work.step, idleMs: 3_600_000, sleep: clock.sleep });
    loop.start();
    work.finish();
    await settle();
    expect(clock.sleeping).toBe(true);
    loop.wake();
    await settle();
    expect(work.calls).toBe(2);
    expect(clock.sleeping).toBe(false);
    work.finish();
    await loop.stop();
  });

  it('starts the step in the waker\'s turn, on the default timer as on an injected sleep', async () => {
    for (const sleep of [undefined, manualSleep().sleep]) {
      const work = manualStep();
      const loop = createPollingLoop({ step: work.step, idleMs: 3_600_000, sleep });
      loop.start();
      work.finish();
      await settle();
      loop.wake();
      expect(work.calls).toBe(2);
      work.finish();
      await loop.stop();
    }
  });

  it('coalesces the wakes that come during a step into one more step, without sleeping before it', async () => {
    const clock = manualSleep();
    const work = manualStep();
    const loop = createPollingLoop({ step: work.step, idleMs: 1000, sleep: clock.sleep });
    loop.start();
    loop.wake();
    loop.wake();
    loop.wake();
    work.finish();
    await settle();
    expect(work.calls).toBe(2);
    expect(clock.requested).toEqual([]);
    work.finish();
    await settle();
    expect(work.calls).toBe(2);
    expect(clock.requested).toEqual([1000]);
    await loop.stop();
  });

  it('reports a failed step and backs off exponentially, with jitter, up to the longest wait; a success resets it', async () => {
    const clock = manualSleep();
    const work = manualStep();
    const reported: Array<[string, number]> = [];
    const loop = createPollingLoop({
      step: work.step,
      idleMs: 1000,
      sleep: clock.sleep,
      random: () => 0.5,
      backoff: { initialMs: 100, maxMs: 400, jitter: 0.5 },
      onError: (err, retryInMs) => reported.push([(err as Error).message, retryInMs]),
    });
    loop.start();
    for (let i = 0; i < 4; i++) {
      work.fail(new Error(`down ${i}`));
      await settle();
      clock.elapse();
      await settle();
    }
    work.finish();
    await settle();
    clock.elapse();
    await settle();
    work.fail(new Error('down again'));
    await settle();
    // Each wait is d * (1 - 0.5 * 0.5): 100, 200, 400, 400 (capped) become 75, 150, 300, 300; then the reset 75.
    expect(reported).toEqual([
      ['down 0', 75],
      ['down 1', 150],
      ['down 2', 300],
      ['down 3', 300],
      ['down again', 75],
    ]);
    expect(clock.requested).toEqual([75, 150, 300, 300, 1000, 75]);
    await loop.stop();
  });

  it('does not let a wake during a failing step skip the backoff, but a wake during the backoff ends it', async () => {
    const clock = manualSleep();
    const work = manualStep();
    const loop = createPollingLoop({ step: work.step, idleMs: 1000, sleep: clock.sleep, backoff: { jitter: 0 }, onError: () => undefined });
    loop.start();
    loop.wake();
    work.fail(new Error('down'));
    await settle();
    expect(clock.requested).toEqual([250]);
    expect(work.calls).toBe(1);
    loop.wake();
    await settle();
    expect(work.calls).toBe(2);
    work.finish();
    await loop.stop();
  });

  it('stop waits for the step in flight, starts no step after it, and ignores later wakes; it can start again', async () => {
    const clock = manualSleep();
    const work = manualStep();
    const loop = createPollingLoop({ step: work.step, idleMs: 1000, sleep: clock.sleep });
    loop.start();
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    work.finish(0);
    await stopping;
    expect(work.calls).toBe(1);
    loop.wake();
    await settle();
    expect(work.calls).toBe(1);
    loop.start();
    expect(work.calls).toBe(2);
    work.finish();
    await settle();
    await loop.stop();
    expect(clock.sleeping).toBe(false);
    expect(work.calls).toBe(2);
  });

  it('does not report a step that fails while the loop stops', async () => {
    const work = manualStep();
    const reported: unknown[] = [];
    const loop = createPollingLoop({ step: work.step, idleMs: 1000, sleep: manualSleep().sleep, onError: (err) => reported.push(err) });
    loop.start();
    const stopping = loop.stop();
    work.fail(new Error('connection closed'));
    await stopping;
    expect(reported).toEqual([]);
  });

  it('runs several workers on one step, each told its index, and a wake wakes them all', async () => {
    const seen: number[] = [];
    let sleeping = 0;
    const sleep: InterruptibleSleep = (_ms, signal) =>
      new Promise((resolve) => {
        sleeping++;
        signal.addEventListener('abort', () => {
          sleeping--;
          resolve();
        });
      });
    const loop = createPollingLoop({
      step: async (worker) => {
        seen.push(worker);
      },
      idleMs: 1000,
      workers: 3,
      sleep,
    });
    loop.start();
    await settle();
    expect(seen.sort()).toEqual([0, 1, 2]);
    expect(sleeping).toBe(3);
    loop.wake();
    await settle();
    expect(seen).toHaveLength(6);
    await loop.stop();
    expect(sleeping).toBe(0);
  });

  it('runs until idle in the caller turn: counts the steps that asked to go on, bounded by maxSteps, and rethrows', async () => {
    const results: Array<number | void | Error> = [0, 0, 0, undefined];
    const loop = createPollingLoop({
      step: async () => {
        const r = results.shift();
        if (r instanceof Error) throw r;
        return r;
      },
      idleMs: 1000,
    });
    expect(await loop.runUntilIdle()).toBe(3);
    expect(loop.running).toBe(false);
    results.push(0, 0, 0);
    expect(await loop.runUntilIdle(2)).toBe(2);
    results.length = 0;
    results.push(0, new Error('down'));
    await expect(loop.runUntilIdle()).rejects.toThrow('down');
  });

  it('sleeps on real timers by default, and a wake cuts a long sleep short', async () => {
    let steps = 0;
    const loop = createPollingLoop({
      step: async () => {
        steps++;
      },
      idleMs: 3_600_000,
    });
    loop.start();
    await settle();
    expect(steps).toBe(1);
    loop.wake();
    await settle();
    expect(steps).toBe(2);
    const started = Date.now();
    await loop.stop();
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('computes backoff waits: doubling from the first, capped, jitter taking up to its share', () => {
    expect([1, 2, 3, 4, 5, 9, 200].map((n) => backoffDelay(n, { jitter: 0 }))).toEqual([250, 500, 1000, 2000, 4000, 30_000, 30_000]);
    expect(backoffDelay(1, { initialMs: 1000, jitter: 0.5 }, () => 0)).toBe(1000);
    expect(backoffDelay(1, { initialMs: 1000, jitter: 0.5 }, () => 0.9)).toBe(550);
    expect(backoffDelay(3, { initialMs: 1000, maxMs: 1000, jitter: 1 }, () => 0.25)).toBe(750);
  });
});
