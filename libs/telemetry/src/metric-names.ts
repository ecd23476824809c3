/**
 * The names of every metric Lading exports, in one place. The `registry_*` names and labels are those CNCF
 * Distribution's dashboards already query; the `lading_*` ones are Lading's own. Names are the Prometheus names
 * (counters end in `_total`, the OpenTelemetry Prometheus exporter keeps them as they are).
 */

/** Metric names, keyed by what they measure. */
export const METRIC_NAMES = {
  /** Counter `{method, route, code}`: HTTP requests answered, by route template (route table name) and status. */
  httpRequests: 'registry_http_requests_total',
  /** Histogram `{method, route}`: seconds from request to response end. */
  httpRequestDuration: 'registry_http_request_duration_seconds',
  /** Gauge `{route}`: requests being served now. */
  httpInFlight: 'registry_http_in_flight_requests',
  /** Counter `{route, oci_code}`: error responses by the OCI error code of their body (`MANIFEST_UNKNOWN`, ...). */
  httpErrors: 'lading_http_errors_total',
  /** Histogram `{driver, action}`: seconds one blob-storage call took. */
  storageActionSeconds: 'registry_storage_action_seconds',
  /** Counter `{type}`: events, by CloudEvents type, handed to the bus (the outbox relay's publishes). */
  notificationsEvents: 'registry_notifications_events_total',
  /** Gauge: events written but not yet published (the outbox backlog, as Distribution's dashboards call it). */
  notificationsPending: 'registry_notifications_pending',
  /** Gauge: outbox rows not yet published (parked ones excluded). */
  outboxBacklog: 'lading_outbox_backlog',
  /** Gauge: seconds the oldest unpublished outbox row has waited: the relay's lag. */
  outboxLagSeconds: 'lading_outbox_oldest_unpublished_age_seconds',
  /** Gauge: outbox rows parked after too many refused publishes (they wait for an admin; alert when above 0). */
  outboxParked: 'lading_outbox_parked',
  /** Counter: events this process's relay published. */
  outboxPublished: 'lading_outbox_published_total',
  /** Counter: relay drains of this process that failed because the bus was unavailable. */
  outboxPublishFailures: 'lading_outbox_publish_failures_total',
  /** Counter: single events the bus refused in this process. */
  outboxRefused: 'lading_outbox_refused_total',
  /** Counter `{result}`: webhook delivery attempts; result is `delivered`, `failed` (will retry) or `dead_lettered`. */
  webhookDeliveries: 'lading_webhook_deliveries_total',
  /** Histogram `{result}`: seconds one webhook delivery attempt took. */
  webhookDeliverySeconds: 'lading_webhook_delivery_seconds',
  /** Counter: failed webhook delivery attempts (non-2xx, timeout, connection error, refused target), retried or not. */
  webhookDeliveryFailures: 'lading_webhook_delivery_failures_total',
  /** Gauge: webhook deliveries waiting for a (first or next) attempt (read from the database). */
  webhookPending: 'lading_webhook_pending',
  /** Gauge: webhook deliveries dead-lettered and not redelivered (read from the database). */
  webhookDeadLetters: 'lading_webhook_dead_letters',
  /** Gauge `{queue}`: garbage-collection review tasks queued, per queue (`blob`, `manifest`). */
  gcQueueSize: 'lading_gc_queue_size',
  /** Gauge `{queue}`: review tasks due now. */
  gcQueueDue: 'lading_gc_queue_due',
  /** Gauge `{queue}`: review tasks due for longer than `gc.overdue`: the collector is falling behind. */
  gcQueueOverdue: 'lading_gc_queue_overdue',
  /** Gauge `{kind}`: stored objects whose metadata is deleted and whose deletion is pending (`blob`, `upload`, `failing`). */
  gcTombstones: 'lading_gc_tombstones',
  /** Gauge: uploads between committing an object and recording it (they pin the object against deletion). */
  gcPins: 'lading_gc_pins',
  /** Counter: bytes of blob storage the garbage collector freed. */
  gcBytesFreed: 'lading_gc_bytes_freed_total',
  /** Counter `{kind}`: things the garbage collector deleted (`manifest`, `blob`, `object`, `upload`, `tag`). */
  gcDeleted: 'lading_gc_deleted_total',
  /** Counter `{queue, outcome}`: review tasks the collector finished (`deleted`, `kept`, `rescheduled`, `gone`, `postponed`). */
  gcReviews: 'lading_gc_reviews_total',
  /** Counter `{cause}`: reviews and deletions put off (`busy`: a push held the rows, `timeout`, `pinned`). */
  gcPostponed: 'lading_gc_postponed_total',
  /** Counter: manifests kept because their payload could not be parsed. */
  gcUnparseable: 'lading_gc_unparseable_total',
  /** Counter: failed object deletions (retried from their tombstone). */
  gcStorageErrors: 'lading_gc_storage_errors_total',
  /** Counter: failed collector steps (the database down, a bug; retried). */
  gcErrors: 'lading_gc_errors_total',
  /** Counter: tag deletions a dry-run retention policy only reported. */
  gcRetentionReported: 'lading_gc_retention_reported_total',
  /** Counter: upload sessions started. */
  uploadsStarted: 'lading_upload_sessions_started_total',
  /** Counter `{result}`: upload sessions ended (`completed`, `cancelled`, `expired`). */
  uploadsEnded: 'lading_upload_sessions_ended_total',
  /** Gauge: upload sessions open now (read from the database). */
  uploadsOpen: 'lading_upload_sessions_open',
  /** Gauge `{namespace}`: bytes of the distinct blobs a namespace with a quota references, as last reconciled. */
  namespaceUsageBytes: 'lading_namespace_usage_bytes',
  /** Gauge `{namespace}`: a namespace's storage quota in bytes. */
  namespaceQuotaBytes: 'lading_namespace_quota_bytes',
  /** Counter `{cache, result}`: cache lookups; result is `hit` or `miss` (hit ratio = hits / all). */
  cacheRequests: 'lading_cache_requests_total',
  /**
   * Counter `{namespace, kind, result}`: pulls in a pull-through cache's namespace, `kind` `manifest` or `blob`;
   * `result` is `hit` (answered without the upstream), `miss` (fetched), `wait` (waited for a fetch in flight),
   * `stale` (a tag served unchecked because the upstream could not be asked) or `error` (the upstream failed it).
   */
  proxyRequests: 'lading_proxy_requests_total',
  /** Counter `{namespace}`: blob bytes fetched from upstreams and stored. */
  proxyUpstreamBytes: 'lading_proxy_upstream_bytes_total',
  /**
   * Counter: pulls in proxy namespaces whose last-pulled time was not recorded because too many were pending between
   * two flushes (eviction then counts from an older pull). Anything above zero says the flush cannot keep up.
   */
  proxyPullNotesDropped: 'lading_proxy_pull_notes_dropped_total',
} as const;

/** Histogram buckets (seconds) for request and storage latencies: 1 ms to 60 s. */
export const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
