/** Typed queries over `webhook_subscriptions` and `webhook_deliveries` (migration 0005). */
import type { SqlExecutor } from '@lading/metadata';

/** How a subscription's deliveries are rendered. */
export type WebhookFormat = 'cloudevents' | 'distribution';

/** The formats, for validation and help texts. */
export const WEBHOOK_FORMATS: readonly WebhookFormat[] = ['cloudevents', 'distribution'];

/** A subscription as the admin API shows it (never with its secret). */
export interface WebhookSubscription {
  id: string;
  name: string;
  namespace: string;
  url: string;
  format: WebhookFormat;
  eventTypes: string[];
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
}

/** A subscription with its secret as stored (sealed by the at-rest cipher when `secrets.key` is set; see webhook-secrets.ts). */
export interface WebhookSubscriptionWithSecret extends WebhookSubscription {
  secret: string;
}

/** Where a delivery stands. */
export type DeliveryStatus = 'pending' | 'delivered' | 'dead';

/** The statuses, for validation. */
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'dead'];

/** A delivery as the admin API shows it. */
export interface WebhookDelivery {
  id: string;
  subscriptionId: string;
  eventId: string;
  eventType: string;
  repository: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: string | null;
  firstAttemptAt: string | null;
  lastAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
  redeliveries: number;
  createdAt: string;
  finishedAt: string | null;
}

interface SubscriptionRow {
  id: string;
  name: string;
  namespace: string;
  url: string;
  format: WebhookFormat;
  event_types: string[] | string;
  secret: string;
  enabled: boolean;
  created_at: Date | string;
  updated_at: Date | string;
}

const iso = (v: Date | string | null): string | null => (v === null ? null : new Date(v).toISOString());

/** Postgres arrays arrive as arrays from pg and PGlite; a text form is parsed defensively. */
function textArray(value: string[] | string): string[] {
  if (Array.isArray(value)) return value;
  const inner = value.replace(/^\{|\}$/g, '');
  return inner ? inner.split(',').map((s) => s.replace(/^"|"$/g, '')) : [];
}

function subscriptionOf(row: SubscriptionRow): WebhookSubscriptionWithSecret {
  return {
    id: row.id,
    name: row.name,
    namespace: row.namespace,
    url: row.url,
    format: row.format,
    eventTypes: textArray(row.event_types),
    enabled: row.enabled,
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
    secret: row.secret,
  };
}

/** Drops the secret from a subscription. */
export function withoutSecret(s: WebhookSubscriptionWithSecret): WebhookSubscription {
  return { id: s.id, name: s.name, namespace: s.namespace, url: s.url, format: s.format, eventTypes: s.eventTypes, enabled: s.enabled, createdAt: s.createdAt, updatedAt: s.updatedAt };
}

/** What creating a subscription takes: the subscription and its secret, less the timestamps the database sets. */
export type NewSubscription = Omit<WebhookSubscriptionWithSecret, 'createdAt' | 'updatedAt'>;

/** Inserts a subscription. */
export async function insertSubscription(db: SqlExecutor, s: NewSubscription): Promise<WebhookSubscriptionWithSecret> {
  const r = await db.query<SubscriptionRow>(
    `INSERT INTO webhook_subscriptions (id, name, namespace, url, format, event_types, secret, enabled)
     VALUES ($1, $2, $3, $4, $5, $6::text[], $7, $8) RETURNING *`,
    [s.id, s.name, s.namespace, s.url, s.format, s.eventTypes, s.secret, s.enabled],
  );
  return subscriptionOf(r.rows[0]);
}

/** Every subscription, oldest first. */
export async function listSubscriptions(db: SqlExecutor): Promise<WebhookSubscriptionWithSecret[]> {
  return (await db.query<SubscriptionRow>(`SELECT * FROM webhook_subscriptions ORDER BY created_at, id`)).rows.map(subscriptionOf);
}

/** One subscription, or null. */
export async function findSubscription(db: SqlExecutor, id: string): Promise<WebhookSubscriptionWithSecret | null> {
  const r = await db.query<SubscriptionRow>(`SELECT * FROM webhook_subscriptions WHERE id = $1`, [id]);
  return r.rows[0] ? subscriptionOf(r.rows[0]) : null;
}

/** The fields an update may change. */
export type SubscriptionChanges = Partial<Pick<NewSubscription, 'name' | 'namespace' | 'url' | 'format' | 'eventTypes' | 'enabled' | 'secret'>>;

const COLUMNS: Record<keyof SubscriptionChanges, string> = {
  name: 'name',
  namespace: 'namespace',
  url: 'url',
  format: 'format',
  eventTypes: 'event_types',
  enabled: 'enabled',
  secret: 'secret',
};

/** Changes a subscription; null when it does not exist. */
export async function updateSubscription(db: SqlExecutor, id: string, changes: SubscriptionChanges): Promise<WebhookSubscriptionWithSecret | null> {
  const sets: string[] = [];
  const params: unknown[] = [id];
  for (const [key, value] of Object.entries(changes) as Array<[keyof SubscriptionChanges, unknown]>) {
    if (value === undefined) continue;
    params.push(value);
    sets.push(`${COLUMNS[key]} = $${params.length}${key === 'eventTypes' ? '::text[]' : ''}`);
  }
  sets.push('updated_at = now()');
  const r = await db.query<SubscriptionRow>(`UPDATE webhook_subscriptions SET ${sets.join(', ')} WHERE id = $1 RETURNING *`, params);
  return r.rows[0] ? subscriptionOf(r.rows[0]) : null;
}

/** Deletes a subscription and its deliveries; false when it did not exist. */
export async function deleteSubscription(db: SqlExecutor, id: string): Promise<boolean> {
  return (await db.query(`DELETE FROM webhook_subscriptions WHERE id = $1`, [id])).rowCount > 0;
}

/**
 * The enabled subscriptions whose namespace and type filter match an event. A subscription gets the events of
 * changes made after it was created (with a minute's grace for clocks): a consumer group replaying the topic from
 * the start never floods a new subscription with history.
 */
export async function matchingSubscriptions(db: SqlExecutor, repository: string, eventType: string, eventTime: string): Promise<WebhookSubscriptionWithSecret[]> {
  const r = await db.query<SubscriptionRow>(
    `SELECT * FROM webhook_subscriptions
      WHERE enabled
        AND (namespace = '' OR namespace = $1 OR left($1, length(namespace) + 1) = namespace || '/')
        AND (cardinality(event_types) = 0 OR $2 = ANY (event_types))
        AND created_at <= $3::timestamptz + interval '1 minute'
      ORDER BY id`,
    [repository, eventType, eventTime],
  );
  return r.rows.map(subscriptionOf);
}

/** What `eventsWithSubscriptions` needs of an event. */
export interface EventToMatch {
  repository: string;
  eventType: string;
  eventTime: string;
}

/**
 * Which of `events` (their indexes) some enabled subscription matches, by the rules of `matchingSubscriptions`, in
 * one statement for the whole batch: most batches match none, and then that is all they cost.
 */
export async function eventsWithSubscriptions(db: SqlExecutor, events: readonly EventToMatch[]): Promise<Set<number>> {
  if (events.length === 0) return new Set();
  const r = await db.query<{ i: number }>(
    `SELECT DISTINCT e.i::int AS i
       FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS e(repository, event_type, event_time, i)
       JOIN webhook_subscriptions s
         ON s.enabled
        AND (s.namespace = '' OR s.namespace = e.repository OR left(e.repository, length(s.namespace) + 1) = s.namespace || '/')
        AND (cardinality(s.event_types) = 0 OR e.event_type = ANY (s.event_types))
        AND s.created_at <= e.event_time + interval '1 minute'`,
    [events.map((e) => e.repository), events.map((e) => e.eventType), events.map((e) => e.eventTime)],
  );
  return new Set(r.rows.map((row) => Number(row.i) - 1));
}

/** Every subscription's id and stored secret. */
export async function storedWebhookSecrets(db: SqlExecutor): Promise<Array<{ id: string; secret: string }>> {
  return (await db.query<{ id: string; secret: string }>(`SELECT id, secret FROM webhook_subscriptions ORDER BY id`)).rows;
}

/** Replaces a subscription's stored secret if it is still `from`; true when it was replaced. */
export async function replaceWebhookSecret(db: SqlExecutor, id: string, from: string, to: string): Promise<boolean> {
  return (await db.query(`UPDATE webhook_subscriptions SET secret = $3 WHERE id = $1 AND secret = $2`, [id, from, to])).rowCount > 0;
}

/** A delivery to queue. */
export interface NewDelivery {
  id: string;
  subscriptionId: string;
  eventId: string;
  eventType: string;
  repository: string;
  /** The event's JSON as the bus carried it. */
  event: string;
}

/** Queues a delivery unless one exists for the same subscription and event (the bus is at-least-once); true when queued. */
export async function insertDelivery(db: SqlExecutor, d: NewDelivery): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, repository, event)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subscription_id, event_id) DO NOTHING`,
    [d.id, d.subscriptionId, d.eventId, d.eventType, d.repository, d.event],
  );
  return r.rowCount > 0;
}

/**
 * True when the subscription has a delivery of a `manifest.pushed` event for the same repository, digest and tag,
 * caused by the same request: a Distribution consumer gets the push once, carrying its tag.
 */
export async function hasPushDeliveryFor(
  db: SqlExecutor,
  subscriptionId: string,
  manifestPushedType: string,
  target: { repository: string; digest: string; tag: string; requestId: string | null },
): Promise<boolean> {
  const r = await db.query(
    `SELECT 1 FROM webhook_deliveries
      WHERE subscription_id = $1 AND event_type = $2 AND repository = $3
        AND event::jsonb->'data'->>'digest' = $4 AND event::jsonb->'data'->>'tag' = $5
        AND (event::jsonb->'data'->'request'->>'id') IS NOT DISTINCT FROM $6::text
      LIMIT 1`,
    [subscriptionId, manifestPushedType, target.repository, target.digest, target.tag, target.requestId],
  );
  return r.rows.length > 0;
}

interface DeliveryRow {
  id: string;
  subscription_id: string;
  event_id: string;
  event_type: string;
  repository: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date | string;
  first_attempt_at: Date | string | null;
  last_attempt_at: Date | string | null;
  last_status: number | null;
  last_error: string | null;
  redeliveries: number;
  created_at: Date | string;
  finished_at: Date | string | null;
}

function deliveryOf(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    eventId: row.event_id,
    eventType: row.event_type,
    repository: row.repository,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.status === 'pending' ? iso(row.next_attempt_at) : null,
    firstAttemptAt: iso(row.first_attempt_at),
    lastAttemptAt: iso(row.last_attempt_at),
    lastStatus: row.last_status,
    lastError: row.last_error,
    redeliveries: row.redeliveries,
    createdAt: iso(row.created_at)!,
    finishedAt: iso(row.finished_at),
  };
}

const DELIVERY_COLUMNS = `id, subscription_id, event_id, event_type, repository, status, attempts, next_attempt_at, first_attempt_at,
  last_attempt_at, last_status, last_error, redeliveries, created_at, finished_at`;

/** A page of a subscription's deliveries in queueing order (ids are UUIDv7), after `last`, optionally of one status. */
export async function listDeliveries(
  db: SqlExecutor,
  subscriptionId: string,
  options: { status?: DeliveryStatus; last?: string | null; limit: number },
): Promise<WebhookDelivery[]> {
  const r = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries
      WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR id > $3::uuid)
      ORDER BY id LIMIT $4`,
    [subscriptionId, options.status ?? null, options.last ?? null, options.limit],
  );
  return r.rows.map(deliveryOf);
}

/** One delivery of a subscription, or null. */
export async function findDelivery(db: SqlExecutor, subscriptionId: string, deliveryId: string): Promise<WebhookDelivery | null> {
  const r = await db.query<DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription_id = $1 AND id = $2`, [subscriptionId, deliveryId]);
  return r.rows[0] ? deliveryOf(r.rows[0]) : null;
}

/**
 * Queues a finished delivery again (same event id, attempts from zero); a pending one is left as it is.
 * Resolves with the delivery, or null when it does not exist.
 */
export async function requeueDelivery(db: SqlExecutor, subscriptionId: string, deliveryId: string): Promise<WebhookDelivery | null> {
  await db.query(
    `UPDATE webhook_deliveries
        SET status = 'pending', attempts = 0, next_attempt_at = now(), claim = NULL, first_attempt_at = NULL,
            finished_at = NULL, redeliveries = redeliveries + 1
      WHERE subscription_id = $1 AND id = $2 AND status IN ('delivered', 'dead')`,
    [subscriptionId, deliveryId],
  );
  return findDelivery(db, subscriptionId, deliveryId);
}

/** A delivery a worker has claimed, with what it needs to send it. */
export interface ClaimedDelivery {
  id: string;
  claim: string;
  eventId: string;
  eventType: string;
  /** The event's JSON as the bus carried it. */
  event: string;
  /** Attempts including this one. */
  attempt: number;
  firstAttemptAt: Date;
  subscription: WebhookSubscriptionWithSecret;
}

/**
 * Claims up to `limit` due deliveries for one worker: `FOR UPDATE SKIP LOCKED` so that workers never take the same
 * row, then a lease (`next_attempt_at` moved to the lease's end, a fresh claim id) so that a worker that dies
 * mid-attempt gives the delivery back when the lease ends. The attempt is counted at the claim.
 */
export async function claimDueDeliveries(db: SqlExecutor, claim: string, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  const r = await db.query<{ id: string; event_id: string; event_type: string; event: unknown; attempts: number; first_attempt_at: Date | string } & { s: SubscriptionRow }>(
    `WITH due AS (
       SELECT d.id FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND s.enabled
        ORDER BY d.next_attempt_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED
     ), claimed AS (
       UPDATE webhook_deliveries d
          SET claim = $1::uuid, attempts = d.attempts + 1, next_attempt_at = now() + $3 * interval '1 millisecond',
              first_attempt_at = coalesce(d.first_attempt_at, now()), last_attempt_at = now()
         FROM due WHERE d.id = due.id
       RETURNING d.id, d.subscription_id, d.event_id, d.event_type, d.event, d.attempts, d.first_attempt_at
     )
     SELECT c.id, c.event_id, c.event_type, c.event, c.attempts, c.first_attempt_at, row_to_json(s.*) AS s
       FROM claimed c JOIN webhook_subscriptions s ON s.id = c.subscription_id`,
    [claim, limit, leaseMs],
  );
  return r.rows.map((row) => {
    const s = typeof row.s === 'string' ? (JSON.parse(row.s) as SubscriptionRow) : row.s;
    return {
      id: row.id,
      claim,
      eventId: row.event_id,
      eventType: row.event_type,
      event: String(row.event),
      attempt: row.attempts,
      firstAttemptAt: new Date(row.first_attempt_at),
      subscription: subscriptionOf(s),
    };
  });
}

/** The outcome of one attempt, as recorded. */
export type AttemptRecord =
  | { kind: 'delivered'; status: number }
  | { kind: 'retry'; status: number | null; error: string | null; retryAt: Date }
  | { kind: 'dead'; status: number | null; error: string | null };

/**
 * Records an attempt under the claim that made it: true when the claim still held the delivery (a claim whose lease
 * ran out and was taken over records nothing, so a delivery is finished once).
 */
export async function recordAttempt(db: SqlExecutor, id: string, claim: string, outcome: AttemptRecord): Promise<boolean> {
  const status = outcome.status;
  const error = outcome.kind === 'delivered' ? null : outcome.error?.slice(0, 1000) ?? null;
  const r =
    outcome.kind === 'retry'
      ? await db.query(
          `UPDATE webhook_deliveries SET next_attempt_at = $4, claim = NULL, last_status = $5, last_error = $6
            WHERE id = $1 AND claim = $2::uuid AND status = $3`,
          [id, claim, 'pending', outcome.retryAt, status, error],
        )
      : await db.query(
          `UPDATE webhook_deliveries SET status = $4, claim = NULL, finished_at = now(), last_status = $5, last_error = $6
            WHERE id = $1 AND claim = $2::uuid AND status = $3`,
          [id, claim, 'pending', outcome.kind, status, error],
        );
  return r.rowCount > 0;
}

/** Deliveries by status (for metrics), and the earliest time a pending one falls due. */
export async function deliveryStats(db: SqlExecutor): Promise<{ pending: number; delivered: number; dead: number; nextDueAt: Date | null }> {
  const r = await db.query<{ status: DeliveryStatus; n: number | string }>(`SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status`);
  const counts = { pending: 0, delivered: 0, dead: 0 };
  for (const row of r.rows) counts[row.status] = Number(row.n);
  return { ...counts, nextDueAt: await nextDueAt(db) };
}

/** When the earliest pending delivery of an enabled subscription falls due (a claimed one: when its lease ends), or null. */
export async function nextDueAt(db: SqlExecutor): Promise<Date | null> {
  const r = await db.query<{ at: Date | string | null }>(
    `SELECT min(d.next_attempt_at) AS at FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
      WHERE d.status = 'pending' AND s.enabled`,
  );
  return r.rows[0]?.at ? new Date(r.rows[0].at) : null;
}
