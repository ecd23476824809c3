/**
 * The one way Lading makes a kafkajs client: `new Kafka(config)` after mending kafkajs 2.2.4's request queue.
 *
 * kafkajs 2.2.4 (its last release) re-arms a timer after every response it receives, even when no request waits and
 * nothing is throttled, with the delay `throttledUntil - Date.now()`, where `throttledUntil` is -1: a negative
 * delay, which node runs after 1 ms. Every broker connection therefore checks an empty queue about a thousand times
 * a second for as long as it is open, and on Node 24 the first such timer prints a `TimeoutNegativeWarning` to
 * stderr (kafkajs issues 1704 and 1751; the fixes proposed there are not released). The mended method arms the
 * timer only when a request waits (at the end of the throttle, or after 10 ms as before when the throttle has
 * already ended) or when a throttle is still running; with nothing waiting, the next push or response checks the
 * queue anyway.
 */
import type { Kafka, KafkaConfig } from 'kafkajs';

/**
 * kafkajs, loaded on first use: a process on the in-process bus (the embedded default) never needs its ~140 modules.
 * `require` rather than `import()`, so that OpenTelemetry's kafkajs instrumentation, which hooks `require`, still
 * patches it as it loads.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const loadKafkajs = (): typeof import('kafkajs') => require('kafkajs') as typeof import('kafkajs');

/** The version whose request queue this module mends; another version is left alone. */
export const MENDED_KAFKAJS_VERSION = '2.2.4';

/** What the mended method uses of kafkajs's RequestQueue (src/network/requestQueue). */
interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs's CHECK_PENDING_REQUESTS_INTERVAL: how soon waiting requests are checked once a throttle has ended. */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;
const MENDED = Symbol.for('lading.kafkajs.requestQueue.mended');

function scheduleCheckPendingRequests(this: RequestQueueInternals): void {
  if (this.throttleCheckTimeoutId) return;
  let delayMs = this.throttledUntil - Date.now();
  if (this.pending.length > 0) delayMs = delayMs > 0 ? delayMs : CHECK_PENDING_REQUESTS_INTERVAL_MS;
  else if (delayMs <= 0) return;
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, delayMs);
}

/**
 * Replaces kafkajs's `RequestQueue.prototype.scheduleCheckPendingRequests` with the mended one, once per loaded
 * kafkajs; returns whether the loaded kafkajs's queue is the mended one (false for a version other than
 * MENDED_KAFKAJS_VERSION, which is left as it is).
 */
export function mendKafkajsRequestQueue(): boolean {
  // The very files kafkajs loads (it has no exports map and no types for its internals), so require.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { version } = require('kafkajs/package.json') as { version: string };
  if (version !== MENDED_KAFKAJS_VERSION) return false;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const RequestQueue = require('kafkajs/src/network/requestQueue') as { prototype: RequestQueueInternals & { [MENDED]?: true } };
  const proto = RequestQueue.prototype;
  if (!proto[MENDED]) {
    proto.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
    proto[MENDED] = true;
  }
  return true;
}

/** Returns a kafkajs client for `config`, its request queue mended (see the top of this file). */
export function createKafkaClient(config: KafkaConfig): Kafka {
  mendKafkajsRequestQueue();
  return new (loadKafkajs().Kafka)(config);
}
