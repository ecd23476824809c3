/** A polling loop's sleep released by hand, for specs of what a loop does on its next poll, without timers. */

/** A sleep to give a polling loop (`sleep` of createPollingLoop), and the hand that ends it. */
export interface ManualSleep {
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Ends the current sleep and resolves once the step that follows has run and the loop sleeps again. */
  step(): Promise<void>;
}

/** Creates a manual sleep (see ManualSleep); stopping the loop (its signal) ends a sleep too. */
export function manualSleep(): ManualSleep {
  let wake: (() => void) | null = null;
  let asleep: () => void = () => undefined;
  let sleeping = new Promise<void>((resolve) => (asleep = resolve));
  return {
    sleep: (_ms, signal) =>
      new Promise<void>((resolve) => {
        wake = resolve;
        signal.addEventListener('abort', () => resolve());
        asleep();
      }),
    async step() {
      await sleeping;
      sleeping = new Promise<void>((resolve) => (asleep = resolve));
      wake?.();
      await sleeping;
    },
  };
}
