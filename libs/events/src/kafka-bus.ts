/**
 * The Kafka bus: events published with the CloudEvents Kafka binding in structured mode (the whole event as JSON,
 * `content-type: application/cloudevents+json`), keyed by repository so that a repository's events share a
 * partition and keep their order. Any Kafka client can read the topic without Lading's code.
 */
import type { Producer } from 'kafkajs';
import { createKafkaClient, loadKafkajs } from './kafka-client';
import { EventBus, EventHandler, EventsRefusedError, SubscribeOptions, handleTraced } from './bus';
import type { LadingEvent } from './event-types';

/** Settings of the Kafka bus. */
export interface KafkaBusOptions {
  brokers: string[];
  topic: string;
  partitions: number;
  clientId: string;
  /** Receives kafkajs's warnings and errors. */
  log?: (level: 'warn', message: string, extra: Record<string, unknown>) => void;
  /** How long to wait for a broker before a publish or start-up fails. */
  connectionTimeoutMs?: number;
}

/** The content type of a structured-mode CloudEvent. */
export const CLOUDEVENTS_JSON = 'application/cloudevents+json; charset=UTF-8';

/** Renders an event as a Kafka message (CloudEvents Kafka binding, structured mode). */
export function toKafkaMessage(event: LadingEvent): { key: string; value: string; headers: Record<string, string> } {
  const headers: Record<string, string> = { 'content-type': CLOUDEVENTS_JSON };
  if (event.traceparent) headers.traceparent = event.traceparent;
  return { key: event.partitionkey, value: JSON.stringify(event), headers };
}

/**
 * Kafka protocol errors that refuse the records themselves (size, validation, corruption): sending the same
 * records again cannot succeed. Every other failure (connection, timeouts, leadership, authorisation) is treated as
 * the bus being unavailable, so it never counts against an event.
 */
const RECORD_REFUSALS = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'INVALID_TIMESTAMP', 'CORRUPT_MESSAGE']);

/** The kafkajs protocol error type behind an error, following kafkajs's `cause` wrapping (retries, non-retriable). */
function protocolErrorType(err: unknown): string | undefined {
  for (let e = err as { type?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 8; e = e.cause as typeof e, depth++) {
    if (typeof e.type === 'string') return e.type;
  }
  return undefined;
}

/** Turns a kafkajs send failure into the bus's terms: an `EventsRefusedError` for a per-record refusal, else itself. */
export function classifyKafkaError(err: unknown): unknown {
  const type = protocolErrorType(err);
  if (type && RECORD_REFUSALS.has(type)) return new EventsRefusedError(`kafka refused the records: ${type}`, { cause: err });
  return err;
}

/**
 * Returns a bus on Kafka. Connecting (and creating the events topic if it is missing) starts at once without
 * holding up start-up, and is retried on the next use after a failure, so a process starts and serves while Kafka
 * is down; the outbox keeps the events until the broker is back.
 */
export async function createKafkaBus(options: KafkaBusOptions): Promise<EventBus> {
  const { Partitioners, logLevel } = loadKafkajs();
  const kafka = createKafkaClient({
    clientId: options.clientId,
    brokers: options.brokers,
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout: 10_000,
    retry: { retries: 3, initialRetryTime: 200 },
    logLevel: logLevel.WARN,
    // kafkajs logs at ERROR for conditions it retries (a coordinator loading, a topic created concurrently);
    // failures that matter reach us as rejected promises, so its own lines are warnings.
    logCreator: () => (entry) => {
      const { message, ...extra } = entry.log;
      options.log?.('warn', String(message), extra as Record<string, unknown>);
    },
  });

  async function ensureTopic(): Promise<void> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      if (!(await admin.listTopics()).includes(options.topic)) {
        try {
          await admin.createTopics({
            topics: [{ topic: options.topic, numPartitions: options.partitions, replicationFactor: 1 }],
            waitForLeaders: true,
          });
        } catch (err) {
          // Another replica starting at the same moment may have created it.
          if (!(await admin.listTopics()).includes(options.topic)) throw err;
        }
      }
    } finally {
      await admin.disconnect();
    }
  }

  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  let ready: Promise<void> | null = null;
  const whenReady = (): Promise<void> => {
    ready ??= (async () => {
      await ensureTopic();
      await producer.connect();
    })().catch((err) => {
      ready = null;
      throw err;
    });
    return ready;
  };
  const consumers = new Set<() => Promise<void>>();
  // Create the topic at start-up when Kafka answers; when it does not, the first publish tries again.
  const startup = whenReady().catch((err) => options.log?.('warn', `kafka not ready at start-up: ${(err as Error)?.message ?? err}`, {}));

  return {
    driverName: 'kafka',
    async publish(events) {
      if (events.length === 0) return;
      await whenReady();
      try {
        await producer.send({ topic: options.topic, acks: -1, messages: events.map(toKafkaMessage) });
      } catch (err) {
        throw classifyKafkaError(err);
      }
    },
    async subscribe(handler: EventHandler, subscribeOptions: SubscribeOptions = {}) {
      await ensureTopic();
      const groupId = subscribeOptions.group ?? `${options.clientId}-subscriber`;
      const consumer = kafka.consumer({ groupId });
      await consumer.connect();
      await consumer.subscribe({ topic: options.topic, fromBeginning: subscribeOptions.fromBeginning ?? false });
      await consumer.run({
        eachMessage: async ({ message }) => {
          if (!message.value) return;
          // The message's traceparent header is the relay batch's (kafkajs's instrumentation sets it); the event's own
          // field names the request that caused it, and parents the handle span (linked to kafkajs's process span).
          await handleTraced(handler, JSON.parse(message.value.toString('utf8')) as LadingEvent, groupId);
        },
      });
      const stop = async () => {
        consumers.delete(stop);
        await consumer.disconnect();
      };
      consumers.add(stop);
      return stop;
    },
    async close() {
      await startup;
      for (const stop of [...consumers]) await stop();
      if (ready) await producer.disconnect().catch(() => undefined);
    },
  };
}
