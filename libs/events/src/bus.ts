/** The event-bus seam: the outbox relay publishes to it; consumers subscribe. Kafka in production, in-process embedded. */
import { SpanKind, context, trace } from '@opentelemetry/api';
import { SPAN_ATTRIBUTES, SPAN_NAMES, withItemSpans, withSpan } from '@lading/telemetry';
import type { LadingEvent } from './event-types';

/** Handles one delivered event; at-least-once, so handlers dedupe by event id. */
export type EventHandler = (event: LadingEvent) => Promise<void> | void;

/**
 * Handles delivered events a batch at a time, in order; at-least-once, so handlers dedupe by event id. A handler
 * that does one statement per batch instead of one per event subscribes this way (`subscribeBatches`).
 */
export type EventBatchHandler = (events: LadingEvent[]) => Promise<void> | void;

/** How a subscriber consumes: its consumer group (Kafka), and whether a new group starts from the oldest event. */
export interface SubscribeOptions {
  group?: string;
  fromBeginning?: boolean;
}

/**
 * The bus refused the events themselves (too large, invalid): publishing them again unchanged cannot succeed. Any
 * other error from `publish` means the bus is unavailable (broker down, timeouts) and the same events may be retried.
 */
export class EventsRefusedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventsRefusedError';
  }
}

/** True when a publish failed because the bus refused the events themselves, not because it was unavailable. */
export function isEventsRefused(err: unknown): err is EventsRefusedError {
  return err instanceof EventsRefusedError;
}

/** A bus the relay can publish to. */
export interface EventBus {
  readonly driverName: string;
  /**
   * Publishes a batch; resolves once the bus has accepted every event (a broker ack, for Kafka). Rejects with an
   * `EventsRefusedError` when the bus refuses the events themselves, with any other error when it is unavailable.
   */
  publish(events: LadingEvent[]): Promise<void>;
  /** Registers a handler; resolves, once it is consuming, with a function that unsubscribes it. */
  subscribe(handler: EventHandler, options?: SubscribeOptions): Promise<() => Promise<void>>;
  /**
   * Registers a handler of batches (the events one `publish` carried, on the in-process bus); resolves, once it is
   * consuming, with a function that unsubscribes it. A bus without it (Kafka) is consumed event by event through
   * `subscribe`.
   */
  subscribeBatches?(handler: EventBatchHandler, options?: SubscribeOptions): Promise<() => Promise<void>>;
  /**
   * Resolves once every event published so far has been handed to every handler. Only the in-process bus has such
   * a point (a broker delivers whenever its consumers poll); tests of the embedded registry wait on it.
   */
  settled?(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Runs a consumer's handler for one event inside an `event.handle` span (kind CONSUMER), parented by the event's
 * own `traceparent` (the request that wrote it), so a consumer's work shows in the trace of the push that caused
 * it; when the bus's client made a span of its own for the delivery (kafkajs's `process` span), the handle span is
 * linked to it. An event without a traceparent gets a span in the active trace (or a new one).
 */
export function handleTraced(handler: EventHandler, event: LadingEvent, consumer: string): Promise<void> {
  const delivery = trace.getSpan(context.active())?.spanContext();
  return withSpan(
    SPAN_NAMES.eventHandle,
    { [SPAN_ATTRIBUTES.eventType]: event.type, [SPAN_ATTRIBUTES.eventId]: event.id, [SPAN_ATTRIBUTES.consumer]: consumer, [SPAN_ATTRIBUTES.repository]: event.partitionkey },
    () => handler(event),
    { kind: SpanKind.CONSUMER, parent: event.traceparent, links: delivery && trace.isSpanContextValid(delivery) ? [{ context: delivery }] : undefined },
  );
}

/**
 * Runs a consumer's batch handler with one `event.handle` span (kind CONSUMER) per event, each parented by that
 * event's own `traceparent`, as `handleTraced` does for one event: the spans end together with the batch.
 */
export function handleBatchTraced(handler: EventBatchHandler, events: LadingEvent[], consumer: string): Promise<void> {
  return withItemSpans(
    SPAN_NAMES.eventHandle,
    events.map((event) => ({
      traceparent: event.traceparent,
      attributes: { [SPAN_ATTRIBUTES.eventType]: event.type, [SPAN_ATTRIBUTES.eventId]: event.id, [SPAN_ATTRIBUTES.consumer]: consumer, [SPAN_ATTRIBUTES.repository]: event.partitionkey },
    })),
    async () => handler(events),
    SpanKind.CONSUMER,
  );
}

/** An error a handler threw, reported instead of stopping delivery to the others. */
export type HandlerErrorReporter = (err: unknown, event: LadingEvent) => void;

/**
 * The in-process bus: delivery is asynchronous (handlers run after `publish` resolves, never inside the relay's
 * transaction), in publish order, and a failing handler never stops the others. Each published batch goes to the
 * event handlers event by event, then to each batch handler whole (a failed batch is reported for its first event).
 */
export function createInProcessBus(onHandlerError: HandlerErrorReporter = () => undefined): EventBus {
  const handlers = new Map<EventHandler, string>();
  const batchHandlers = new Map<EventBatchHandler, string>();
  let chain: Promise<void> = Promise.resolve();
  return {
    driverName: 'in-process',
    async publish(events) {
      const batch = [...events];
      chain = chain.then(async () => {
        // Yield first: delivery must never run inside the publisher's (the relay's) transaction.
        await new Promise((resolve) => setImmediate(resolve));
        for (const event of batch) {
          for (const [handler, consumer] of handlers) {
            try {
              await handleTraced(handler, event, consumer);
            } catch (err) {
              onHandlerError(err, event);
            }
          }
        }
        if (batch.length === 0) return;
        for (const [handler, consumer] of batchHandlers) {
          try {
            await handleBatchTraced(handler, batch, consumer);
          } catch (err) {
            onHandlerError(err, batch[0]);
          }
        }
      });
    },
    async subscribe(handler, options) {
      handlers.set(handler, options?.group ?? 'in-process');
      return async () => {
        handlers.delete(handler);
      };
    },
    async subscribeBatches(handler, options) {
      batchHandlers.set(handler, options?.group ?? 'in-process');
      return async () => {
        batchHandlers.delete(handler);
      };
    },
    settled: () => chain,
    async close() {
      await chain;
      handlers.clear();
      batchHandlers.clear();
    },
  };
}
