/**
 * The enqueuer: a bus subscriber (consumer group `lading-webhooks` on Kafka; a handler on the in-process bus) that
 * turns each repository event (not the audit trail's) into one delivery row per matching enabled subscription. The
 * bus delivers at least once, so the insert is idempotent on (subscription, event id).
 */
import type { EventBus, LadingEvent } from '@lading/events';
import { EVENT_TYPES, IdGenerator, isAuditEventType } from '@lading/events';
import type { Database } from '@lading/metadata';
import { distributionAction } from './delivery-body';
import { hasPushDeliveryFor, insertDelivery, matchingSubscriptions } from '@lading/webhooks';

/** The consumer group of the webhooks enqueuer on Kafka. */
export const WEBHOOKS_CONSUMER_GROUP = 'lading-webhooks';

/** What the enqueuer needs. */
export interface DeliveryEnqueuerDeps {
  db: Database;
  ids: IdGenerator;
  /** Called after deliveries were queued (wakes the worker of this process). */
  onQueued?: (count: number) => void;
  /** The consumer group (`lading-webhooks` unless a test isolates itself). */
  group?: string;
}

/**
 * Queues the deliveries of one event; resolves with how many were new. For Distribution-format subscriptions,
 * events without a Distribution form are skipped, and so is a `tag.updated` whose `manifest.pushed` (same request,
 * digest and tag) is already queued: Distribution sends one push per manifest PUT, carrying the tag.
 */
export async function enqueueEvent(deps: DeliveryEnqueuerDeps, event: LadingEvent): Promise<number> {
  // The audit trail shares the bus but is no repository's news: subscriptions never receive it.
  if (isAuditEventType(event.type)) return 0;
  const repository = event.data?.repository ?? event.partitionkey ?? '';
  const time = Number.isNaN(Date.parse(event.time)) ? new Date().toISOString() : event.time;
  // Most events match no subscription: one statement says so, without a transaction (its BEGIN and COMMIT cost
  // more than the statement). When some match, the transaction reads them again and queues their deliveries.
  if ((await matchingSubscriptions(deps.db, repository, event.type, time)).length === 0) return 0;
  const eventJson = JSON.stringify(event);
  const queued = await deps.db.transaction(async (tx) => {
    let count = 0;
    for (const subscription of await matchingSubscriptions(tx, repository, event.type, time)) {
      if (subscription.format === 'distribution') {
        if (!distributionAction(event.type)) continue;
        if (
          event.type === EVENT_TYPES.tagUpdated &&
          event.data.tag &&
          event.data.digest &&
          (await hasPushDeliveryFor(tx, subscription.id, EVENT_TYPES.manifestPushed, {
            repository,
            digest: event.data.digest,
            tag: event.data.tag,
            requestId: event.data.request?.id ?? null,
          }))
        ) {
          continue;
        }
      }
      const inserted = await insertDelivery(tx, {
        id: deps.ids(),
        subscriptionId: subscription.id,
        eventId: event.id,
        eventType: event.type,
        repository,
        event: eventJson,
      });
      if (inserted) count++;
    }
    return count;
  });
  if (queued > 0) deps.onQueued?.(queued);
  return queued;
}

/**
 * Subscribes the enqueuer to the bus; resolves with a function that unsubscribes it. A new consumer group starts
 * from the oldest event, so that events published while the group first forms are not skipped; subscriptions only
 * get events newer than themselves, and the group's committed offsets make later starts resume where they left.
 */
export function subscribeEnqueuer(bus: EventBus, deps: DeliveryEnqueuerDeps): Promise<() => Promise<void>> {
  return bus.subscribe((event) => enqueueEvent(deps, event).then(() => undefined), { group: deps.group ?? WEBHOOKS_CONSUMER_GROUP, fromBeginning: true });
}
