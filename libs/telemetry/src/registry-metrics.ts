/**
 * The registry's metric instruments, created from one meter and passed down to whatever records them (no module
 * singletons: a test builds its own from its own meter provider). Values that live elsewhere (the outbox, the GC
 * queues and counters, the webhook queue, open uploads) are observed through callbacks registered by whoever can read
 * them, so that each figure has one record and one exporter: no hand-written Prometheus text beside this one.
 */
import type { BatchObservableResult, Counter, Histogram, Meter, Observable } from '@opentelemetry/api';
import { LATENCY_BUCKETS_SECONDS, METRIC_NAMES } from './metric-names';
import { HistogramTally, Tally, TallyProducer, createTally } from './tally';

/** Labels of the HTTP request metrics. */
export type HttpLabels = {
  method: string;
  /** The route table name (`manifest`, `blob`, `upload`, ...), `other` outside the table: never a raw path. */
  route: string;
};

/** How a webhook delivery attempt ended: delivered, failed (will be retried) or dead-lettered (given up). */
export type WebhookResult = 'delivered' | 'failed' | 'dead_lettered';

/** How an upload session ended. */
export type UploadEnd = 'completed' | 'cancelled' | 'expired';

/** What the outbox gauges read (the shape of @lading/events' `readOutboxGauges`). */
export interface OutboxStats {
  /** Rows neither published nor parked. */
  backlog: number;
  /** Seconds the oldest unpublished row has waited (0 when none). */
  oldestUnpublishedAgeSeconds: number;
  /** Rows parked after too many refused publishes. */
  parked: number;
}

/** This process's relay counters (the shape of @lading/events' `OutboxRelayCounters`), totals since start. */
export interface RelayCounters {
  published: number;
  publishFailures: number;
  refused: number;
}

/** The collector's queues as its gauges read them (what @lading/gc reads with `gcQueueStats`). */
export interface GcQueueFigures {
  /** Per queue (`blob`, `manifest`): review tasks queued, due now, and due for longer than `gc.overdue`. */
  queues: Record<string, { size: number; due: number; overdue: number }>;
  /** Pending object deletions, by kind (`blob`, `upload`, `failing`). */
  tombstones: Record<string, number>;
  /** Uploads pinning an object between committing and recording it. */
  pins: number;
}

/** The collector's counters as its metrics read them: totals since start, keyed by the label values of metric-names.ts. */
export interface GcCounterFigures {
  /** Finished reviews, by queue and outcome. */
  reviews: Record<string, Record<string, number>>;
  /** Reviews and deletions put off, by cause. */
  postponed: Record<string, number>;
  /** Things deleted, by kind. */
  deleted: Record<string, number>;
  bytesFreed: number;
  unparseable: number;
  storageErrors: number;
  errors: number;
  retentionReported: number;
}

/** The webhook delivery queue as its gauges read it (the shape of @lading/webhooks' `deliveryStats`). */
export interface WebhookQueueStats {
  /** Deliveries waiting for a (first or next) attempt. */
  pending: number;
  /** Deliveries dead-lettered and not redelivered. */
  dead: number;
}

/** A callback that reads a value for a gauge at scrape time. */
export type StatsReader<T> = () => Promise<T> | T;

/** Unregisters an observation callback. */
export type StopObserving = () => void;

/** The labels of `lading_proxy_requests_total`. */
export interface ProxyRequestLabels {
  [label: string]: string;
  namespace: string;
  kind: 'manifest' | 'blob';
  result: 'hit' | 'miss' | 'wait' | 'stale' | 'error';
}

/** The registry's metrics. */
export interface RegistryMetrics {
  /** Every request adds to these three: tallies, not SDK instruments (see `createTally`, `createTallyProducer`). */
  httpRequests: Tally<HttpLabels & { code: string }>;
  httpRequestDuration: HistogramTally<HttpLabels>;
  httpInFlight: Tally<{ route: string }>;
  httpErrors: Counter<{ route: string; oci_code: string }>;
  storageActionSeconds: Histogram<{ driver: string; action: string }>;
  notificationsEvents: Counter<{ type: string }>;
  webhookDeliveries: Counter<{ result: WebhookResult }>;
  webhookDeliverySeconds: Histogram<{ result: WebhookResult }>;
  webhookDeliveryFailures: Counter;
  uploadsStarted: Counter;
  uploadsEnded: Counter<{ result: UploadEnd }>;
  /** Every cached pull adds to it: a tally. */
  cacheRequests: Tally<{ cache: string; result: 'hit' | 'miss' }>;
  /** Pulls in pull-through caches' namespaces, by outcome (`lading_proxy_requests_total`). */
  proxyRequests: Counter<ProxyRequestLabels>;
  /** Blob bytes fetched from upstreams (`lading_proxy_upstream_bytes_total`). */
  proxyUpstreamBytes: Counter<{ namespace: string }>;
  /** Last-pulled notes dropped because too many were pending (`lading_proxy_pull_notes_dropped_total`). */
  proxyPullNotesDropped: Counter;
  /** Feeds the outbox gauges (and `registry_notifications_pending`) from `read`, called at each collection. */
  observeOutbox(read: StatsReader<OutboxStats>): StopObserving;
  /** Feeds the relay's counters (`lading_outbox_published_total`, ...) from `read`, e.g. `() => relay.counters`. */
  observeRelay(read: StatsReader<RelayCounters>): StopObserving;
  /** Feeds the collector's gauges (`lading_gc_queue_size{queue}`, `_due`, `_overdue`, `lading_gc_tombstones`, `lading_gc_pins`) from `read`. */
  observeGcQueues(read: StatsReader<GcQueueFigures>): StopObserving;
  /** Feeds the collector's counters (`lading_gc_reviews_total`, `lading_gc_deleted_total`, ...) from `read`, e.g. its own counters. */
  observeGcCounters(read: StatsReader<GcCounterFigures>): StopObserving;
  /** Feeds `lading_webhook_pending` and `lading_webhook_dead_letters` from `read`. */
  observeWebhookQueue(read: StatsReader<WebhookQueueStats>): StopObserving;
  /** Feeds `lading_upload_sessions_open` from `read`. */
  observeOpenUploads(read: StatsReader<number>): StopObserving;
  /** Feeds `lading_namespace_usage_bytes{namespace}` and `lading_namespace_quota_bytes{namespace}` from `read`. */
  observeQuotaUsage(read: StatsReader<readonly NamespaceQuotaFigure[]>): StopObserving;
}

/** One namespace's quota and usage, as the quota reconciliation last counted it. */
export interface NamespaceQuotaFigure {
  namespace: string;
  quotaBytes: number;
  usedBytes: number;
}

/**
 * Creates the registry's instruments on `meter`, and the per-request histogram on `tallies` (the producer the
 * process's metric readers collect from: `Telemetry.tallies`).
 */
export function createRegistryMetrics(meter: Meter, tallies: TallyProducer): RegistryMetrics {
  const latency = { unit: 's', advice: { explicitBucketBoundaries: LATENCY_BUCKETS_SECONDS } };
  const outboxBacklog = meter.createObservableGauge(METRIC_NAMES.outboxBacklog, { description: 'Outbox rows not yet published.' });
  const notificationsPending = meter.createObservableGauge(METRIC_NAMES.notificationsPending, { description: 'Events written but not yet published.' });
  const outboxLag = meter.createObservableGauge(METRIC_NAMES.outboxLagSeconds, { unit: 's', description: 'Age of the oldest unpublished outbox row.' });
  const outboxParked = meter.createObservableGauge(METRIC_NAMES.outboxParked, { description: 'Outbox rows parked for an admin.' });
  const outboxPublished = meter.createObservableCounter(METRIC_NAMES.outboxPublished, { description: 'Events this process published.' });
  const outboxPublishFailures = meter.createObservableCounter(METRIC_NAMES.outboxPublishFailures, { description: 'Relay drains that failed: bus unavailable.' });
  const outboxRefused = meter.createObservableCounter(METRIC_NAMES.outboxRefused, { description: 'Events the bus refused.' });
  const gcQueueSize = meter.createObservableGauge(METRIC_NAMES.gcQueueSize, { description: 'Garbage-collection review tasks queued.' });
  const gcQueueDue = meter.createObservableGauge(METRIC_NAMES.gcQueueDue, { description: 'Review tasks due now.' });
  const gcQueueOverdue = meter.createObservableGauge(METRIC_NAMES.gcQueueOverdue, { description: 'Review tasks due for longer than the overdue threshold.' });
  const gcTombstones = meter.createObservableGauge(METRIC_NAMES.gcTombstones, { description: 'Stored objects whose metadata is deleted and whose deletion is pending.' });
  const gcPins = meter.createObservableGauge(METRIC_NAMES.gcPins, { description: 'Uploads between committing an object and recording it.' });
  const gcReviews = meter.createObservableCounter(METRIC_NAMES.gcReviews, { description: 'Reviews finished by the garbage collector, by queue and outcome.' });
  const gcDeleted = meter.createObservableCounter(METRIC_NAMES.gcDeleted, { description: 'Things deleted by the garbage collector, by kind.' });
  const gcBytesFreed = meter.createObservableCounter(METRIC_NAMES.gcBytesFreed, { unit: 'By', description: 'Bytes freed by the garbage collector.' });
  const gcPostponed = meter.createObservableCounter(METRIC_NAMES.gcPostponed, { description: 'Reviews and deletions put off, by cause.' });
  const gcUnparseable = meter.createObservableCounter(METRIC_NAMES.gcUnparseable, { description: 'Manifests kept because their payload could not be parsed.' });
  const gcStorageErrors = meter.createObservableCounter(METRIC_NAMES.gcStorageErrors, { description: 'Failed object deletions (retried from their tombstone).' });
  const gcErrors = meter.createObservableCounter(METRIC_NAMES.gcErrors, { description: 'Failed collector steps (retried).' });
  const gcRetentionReported = meter.createObservableCounter(METRIC_NAMES.gcRetentionReported, { description: 'Tag deletions a dry-run retention policy reported.' });
  const webhookPending = meter.createObservableGauge(METRIC_NAMES.webhookPending, { description: 'Webhook deliveries waiting for an attempt.' });
  const webhookDeadLetters = meter.createObservableGauge(METRIC_NAMES.webhookDeadLetters, { description: 'Webhook deliveries dead-lettered and not redelivered.' });
  const uploadsOpen = meter.createObservableGauge(METRIC_NAMES.uploadsOpen, { description: 'Upload sessions open now.' });
  const namespaceUsage = meter.createObservableGauge(METRIC_NAMES.namespaceUsageBytes, { unit: 'By', description: 'Bytes of the distinct blobs a namespace with a quota references, as last reconciled.' });
  const namespaceQuota = meter.createObservableGauge(METRIC_NAMES.namespaceQuotaBytes, { unit: 'By', description: 'A namespace\'s storage quota.' });

  /** Registers a batch callback for `gauges`; a failed read skips one sample instead of failing the collection. */
  function observe<T>(read: StatsReader<T>, report: (value: T, result: BatchObservableResult) => void, gauges: Observable[]): StopObserving {
    const callback = async (result: BatchObservableResult) => {
      let value: T;
      try {
        value = await read();
      } catch {
        return;
      }
      report(value, result);
    };
    meter.addBatchObservableCallback(callback, gauges);
    return () => meter.removeBatchObservableCallback(callback, gauges);
  }

  return {
    httpRequests: createTally<HttpLabels & { code: string }>(meter, METRIC_NAMES.httpRequests, { monotonic: true, description: 'HTTP requests answered.' }, ['method', 'route', 'code']),
    httpRequestDuration: tallies.histogram<HttpLabels>(METRIC_NAMES.httpRequestDuration, { unit: 's', boundaries: LATENCY_BUCKETS_SECONDS, description: 'HTTP request latency.' }, ['method', 'route']),
    httpInFlight: createTally<{ route: string }>(meter, METRIC_NAMES.httpInFlight, { monotonic: false, description: 'HTTP requests being served.' }, ['route']),
    httpErrors: meter.createCounter<{ route: string; oci_code: string }>(METRIC_NAMES.httpErrors, { description: 'Error responses by OCI error code.' }),
    storageActionSeconds: meter.createHistogram<{ driver: string; action: string }>(METRIC_NAMES.storageActionSeconds, { ...latency, description: 'Blob storage call latency.' }),
    notificationsEvents: meter.createCounter<{ type: string }>(METRIC_NAMES.notificationsEvents, { description: 'Events published to the bus.' }),
    webhookDeliveries: meter.createCounter<{ result: WebhookResult }>(METRIC_NAMES.webhookDeliveries, { description: 'Webhook delivery attempts.' }),
    webhookDeliverySeconds: meter.createHistogram<{ result: WebhookResult }>(METRIC_NAMES.webhookDeliverySeconds, { ...latency, description: 'Webhook delivery attempt latency.' }),
    webhookDeliveryFailures: meter.createCounter(METRIC_NAMES.webhookDeliveryFailures, { description: 'Failed webhook delivery attempts.' }),
    uploadsStarted: meter.createCounter(METRIC_NAMES.uploadsStarted, { description: 'Upload sessions started.' }),
    uploadsEnded: meter.createCounter<{ result: UploadEnd }>(METRIC_NAMES.uploadsEnded, { description: 'Upload sessions ended.' }),
    cacheRequests: createTally<{ cache: string; result: 'hit' | 'miss' }>(meter, METRIC_NAMES.cacheRequests, { monotonic: true, description: 'Cache lookups.' }, ['cache', 'result']),
    proxyRequests: meter.createCounter<ProxyRequestLabels>(METRIC_NAMES.proxyRequests, { description: 'Pulls through pull-through caches, by outcome.' }),
    proxyUpstreamBytes: meter.createCounter<{ namespace: string }>(METRIC_NAMES.proxyUpstreamBytes, { unit: 'By', description: 'Blob bytes fetched from upstreams.' }),
    proxyPullNotesDropped: meter.createCounter(METRIC_NAMES.proxyPullNotesDropped, { description: 'Last-pulled times of proxied manifests not recorded: too many were pending.' }),
    observeOutbox: (read) =>
      observe(
        read,
        (stats, result) => {
          result.observe(outboxBacklog, stats.backlog);
          result.observe(notificationsPending, stats.backlog);
          result.observe(outboxLag, stats.oldestUnpublishedAgeSeconds);
          result.observe(outboxParked, stats.parked);
        },
        [outboxBacklog, notificationsPending, outboxLag, outboxParked],
      ),
    observeRelay: (read) =>
      observe(
        read,
        (counters, result) => {
          result.observe(outboxPublished, counters.published);
          result.observe(outboxPublishFailures, counters.publishFailures);
          result.observe(outboxRefused, counters.refused);
        },
        [outboxPublished, outboxPublishFailures, outboxRefused],
      ),
    observeGcQueues: (read) =>
      observe(
        read,
        (figures, result) => {
          for (const [queue, q] of Object.entries(figures.queues)) {
            result.observe(gcQueueSize, q.size, { queue });
            result.observe(gcQueueDue, q.due, { queue });
            result.observe(gcQueueOverdue, q.overdue, { queue });
          }
          for (const [kind, n] of Object.entries(figures.tombstones)) result.observe(gcTombstones, n, { kind });
          result.observe(gcPins, figures.pins);
        },
        [gcQueueSize, gcQueueDue, gcQueueOverdue, gcTombstones, gcPins],
      ),
    observeGcCounters: (read) =>
      observe(
        read,
        (c, result) => {
          for (const [queue, outcomes] of Object.entries(c.reviews)) {
            for (const [outcome, n] of Object.entries(outcomes)) result.observe(gcReviews, n, { queue, outcome });
          }
          for (const [kind, n] of Object.entries(c.deleted)) result.observe(gcDeleted, n, { kind });
          for (const [cause, n] of Object.entries(c.postponed)) result.observe(gcPostponed, n, { cause });
          result.observe(gcBytesFreed, c.bytesFreed);
          result.observe(gcUnparseable, c.unparseable);
          result.observe(gcStorageErrors, c.storageErrors);
          result.observe(gcErrors, c.errors);
          result.observe(gcRetentionReported, c.retentionReported);
        },
        [gcReviews, gcDeleted, gcPostponed, gcBytesFreed, gcUnparseable, gcStorageErrors, gcErrors, gcRetentionReported],
      ),
    observeWebhookQueue: (read) =>
      observe(
        read,
        (stats, result) => {
          result.observe(webhookPending, stats.pending);
          result.observe(webhookDeadLetters, stats.dead);
        },
        [webhookPending, webhookDeadLetters],
      ),
    observeOpenUploads: (read) => observe(read, (open, result) => result.observe(uploadsOpen, open), [uploadsOpen]),
    observeQuotaUsage: (read) =>
      observe(
        read,
        (figures, result) => {
          for (const f of figures) {
            result.observe(namespaceUsage, f.usedBytes, { namespace: f.namespace });
            result.observe(namespaceQuota, f.quotaBytes, { namespace: f.namespace });
          }
        },
        [namespaceUsage, namespaceQuota],
      ),
  };
}

/** Counts one cache's lookups (`lading_cache_requests_total{cache}`) through series resolved once; a no-op without metrics. */
export function cacheLookupCounter(metrics: Pick<RegistryMetrics, 'cacheRequests'> | undefined, cache: string): (hit: boolean) => void {
  if (!metrics) return () => undefined;
  const hits = metrics.cacheRequests.series({ cache, result: 'hit' });
  const misses = metrics.cacheRequests.series({ cache, result: 'miss' });
  return (hit) => (hit ? hits : misses).add(1);
}
