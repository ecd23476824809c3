/**
 * The outbox's background work in a running process: the relay drains on a timer and on every kick, the pruner
 * prunes on its schedule, both through the one polling loop. libs/events keeps what a drain and a prune do (and
 * never imports libs/runtime, which imports it); running them over time is the process's business, here.
 */
import type { OutboxPruner, OutboxRelay } from '@lading/events';
import { InterruptibleSleep, createPollingLoop } from './polling-loop';

/** How a relay or a pruner is run. */
export interface OutboxLoopOptions {
  /** How often to drain (prune) when nothing asks sooner; a failed drain (prune) is retried after the same wait. */
  intervalMs: number;
  /** Told about every failed drain (prune); the loop retries it after `intervalMs` (or the next kick). */
  onError?: (err: unknown) => void;
  /** The loop's sleep (tests drive it by hand). */
  sleep?: InterruptibleSleep;
  /**
   * How long a kick waits before it wakes the relay (0, the default: at once). The kicks that come meanwhile share
   * that one drain: each drain costs a fixed handful of statements (find the busy slices, lock one, claim its rows,
   * mark them published, commit) however many events it carries, and a push writes an event per blob.
   */
  kickDelayMs?: number;
}

/** An outbox relay running in this process. */
export interface RunningOutboxRelay extends OutboxRelay {
  /** Asks the relay to drain now (after a commit that wrote events): a drain in progress goes round again. */
  kick(): void;
  /** Stops draining, waiting for the drain in progress. */
  stop(): Promise<void>;
}

/** An outbox pruner running in this process. */
export interface RunningOutboxPruner extends OutboxPruner {
  /** Stops pruning, waiting for the prune in progress. */
  stop(): Promise<void>;
}

/** The loop settings both share: a failure is retried after the interval, as a missed tick would be. */
function loopOf(step: () => Promise<unknown>, options: OutboxLoopOptions, delayFirstStep: boolean) {
  return createPollingLoop({
    step: async () => {
      await step();
    },
    idleMs: options.intervalMs,
    delayFirstStep,
    backoff: { initialMs: options.intervalMs, maxMs: options.intervalMs, jitter: 0 },
    onError: options.onError ? (err) => options.onError?.(err) : undefined,
    sleep: options.sleep,
  });
}

/** Starts draining `relay` now, every `intervalMs` after, and on every kick; its drain() still works while it runs. */
export function runOutboxRelay(relay: OutboxRelay, options: OutboxLoopOptions): RunningOutboxRelay {
  const loop = loopOf(() => relay.drain(), options, false);
  loop.start();
  const delayMs = options.kickDelayMs ?? 0;
  let kicked: NodeJS.Timeout | undefined;
  return {
    drain: () => relay.drain(),
    get counters() {
      return relay.counters;
    },
    kick() {
      if (delayMs <= 0) return loop.wake();
      kicked ??= setTimeout(() => {
        kicked = undefined;
        loop.wake();
      }, delayMs).unref();
    },
    stop() {
      clearTimeout(kicked);
      kicked = undefined;
      return loop.stop();
    },
  };
}

/** Starts pruning with `pruner` every `intervalMs` (the first prune one interval from now). */
export function runOutboxPruner(pruner: OutboxPruner, options: OutboxLoopOptions): RunningOutboxPruner {
  const loop = loopOf(() => pruner.pruneOnce(), options, true);
  loop.start();
  return {
    pruneOnce: () => pruner.pruneOnce(),
    stop: () => loop.stop(),
  };
}
