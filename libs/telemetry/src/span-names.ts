/**
 * The names of Lading's own spans, in one place: the code that makes them and the checks that look for them
 * (tools/telemetry) use these constants. Instrumentation libraries name theirs (`GET manifest`, `pg.query:…`,
 * `send lading.events`).
 */
export const SPAN_NAMES = {
  /** One blob-storage call: `storage.writeUpload`, `storage.stat`, ... (see libs/storage instrumented-blob-store). */
  storagePrefix: 'storage.',
  /** Hashing an upload's bytes to verify its digest. */
  digestCompute: 'digest.compute',
  /** Validating a manifest before it is stored. */
  manifestValidate: 'manifest.validate',
  /** One relay batch: rows taken from the outbox and sent to the bus (links to each row's trace). */
  outboxRelayBatch: 'outbox.relay',
  /** One outbox row published, parented by the request that wrote it (its stored traceparent). */
  outboxPublish: 'outbox.publish',
  /** One event handled by a consumer (GC, webhooks, scanner), parented by the event's traceparent. */
  eventHandle: 'event.handle',
  /** One GC review task. */
  gcReview: 'gc.review',
  /** One webhook delivery attempt. */
  webhookDeliver: 'webhook.deliver',
  /**
   * One request of the pull-through cache to an upstream registry, until its answer's headers (the token flow and
   * redirects included, their HTTP calls nested); a blob's body streams on after it ends.
   */
  upstreamRequest: 'upstream.request',
} as const;

/** Span attribute names Lading sets on its own spans. */
export const SPAN_ATTRIBUTES = {
  /** The CloudEvents type of the event a span publishes or handles. */
  eventType: 'lading.event.type',
  /** The CloudEvents id of that event. */
  eventId: 'lading.event.id',
  /** The repository a span works on. */
  repository: 'lading.repository',
  /** The consumer (`gc`, `webhooks`, `scanner`) handling an event. */
  consumer: 'lading.consumer',
} as const;
