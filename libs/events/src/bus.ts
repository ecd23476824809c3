/** The event-bus seam: the outbox relay publishes to it; consumers subscribe. Kafka in production, in-process embedded. */
import { SpanKind, context, trace } from '@opentelemetry/api';
import { SPAN_ATTRIBUTES, SPAN_NAMES, withSpan } from '@lading/telemetry';
import type { LadingEvent } from './event-types';

/** Handles one delivered event; at-least-once, so handlers dedupe by event id. */
export type EventHandler = (event: LadingEvent) => Promise<void> | void;

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

/** An error a handler threw, reported instead of stopping delivery to the others. */
export type HandlerErrorReporter = (err: unknown, event: LadingEvent) => void;

/**
 * The in-process bus: delivery is asynchronous (handlers run after `publish` resolves, never inside the relay's
 * transaction), in publish order, and a failing handler never stops the others.
 */
export function createInProcessBus(onHandlerError: HandlerErrorReporter = () => undefined): EventBus {
  const handlers = new Map<EventHandler, string>();
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
      });
    },
    async subscribe(handler, options) {
      handlers.set(handler, options?.group ?? 'in-process');
      return async () => {
        handlers.delete(handler);
      };
    },
    settled: () => chain,
    async close() {
      await chain;
      handlers.clear();
    },
  };
}
