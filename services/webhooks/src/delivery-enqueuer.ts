/**
 * The enqueuer: a bus subscriber (consumer group `lading-webhooks` on Kafka; a handler on the in-process bus) that
 * turns each repository event (not the audit trail's) into one delivery row per matching enabled subscription. The
 * bus delivers at least once, so the insert is idempotent on (subscription, event id).
 */
import type { EventBus, LadingEvent } from '@lading/events';
import { EVENT_TYPES, IdGenerator, isAuditEventType } from '@lading/events';
import type { Database } from '@lading/metadata';
import { distributionAction } from './delivery-body';
import { eventsWithSubscriptions, hasPushDeliveryFor, insertDelivery, matchingSubscriptions } from '@lading/webhooks';

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

/** The repository and time an event is matched with (a time that does not parse counts as now). */
function matchOf(event: LadingEvent) {
  return {
    repository: event.data?.repository ?? event.partitionkey ?? '',
    eventType: event.type,
    eventTime: Number.isNaN(Date.parse(event.time)) ? new Date().toISOString() : event.time,
  };
}

/**
 * Queues the deliveries of one event; resolves with how many were new. For Distribution-format subscriptions,
 * events without a Distribution form are skipped, and so is a `tag.updated` whose `manifest.pushed` (same request,
 * digest and tag) is already queued: Distribution sends one push per manifest PUT, carrying the tag.
 */
export async function enqueueEvent(deps: DeliveryEnqueuerDeps, event: LadingEvent): Promise<number> {
  return enqueueEvents(deps, [event]);
}

/**
 * Queues the deliveries of a batch of events, in order; resolves with how many were new. One statement finds which
 * events any subscription matches (most batches: none, and that is all they cost); each of those is queued in a
 * transaction of its own, as `enqueueEvent` describes. When one of them fails, the others are still queued and the
 * call rejects with the first error.
 */
export async function enqueueEvents(deps: DeliveryEnqueuerDeps, events: readonly LadingEvent[]): Promise<number> {
  // The audit trail shares the bus but is no repository's news: subscriptions never receive it.
  const repositoryEvents = events.filter((event) => !isAuditEventType(event.type));
  const matches = repositoryEvents.map(matchOf);
  const matched = await eventsWithSubscriptions(deps.db, matches);
  let queued = 0;
  let failure: { err: unknown } | undefined;
  for (let i = 0; i < repositoryEvents.length; i++) {
    if (!matched.has(i)) continue;
    // One event's failure does not keep the later ones from their deliveries; the batch still fails (redelivered,
    // where the bus redelivers: inserts are idempotent on subscription and event id).
    try {
      queued += await queueMatched(deps, repositoryEvents[i], matches[i]);
    } catch (err) {
      failure ??= { err };
    }
  }
  if (queued > 0) deps.onQueued?.(queued);
  if (failure) throw failure.err;
  return queued;
}

/** Queues one event's deliveries in a transaction that reads its matching subscriptions again. */
async function queueMatched(deps: DeliveryEnqueuerDeps, event: LadingEvent, match: ReturnType<typeof matchOf>): Promise<number> {
  const { repository, eventTime: time } = match;
  const eventJson = JSON.stringify(event);
  return deps.db.transaction(async (tx) => {
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
}

/**
 * Subscribes the enqueuer to the bus (a batch at a time where the bus offers it); resolves with a function that unsubscribes it. A new consumer group starts
 * from the oldest event, so that events published while the group first forms are not skipped; subscriptions only
 * get events newer than themselves, and the group's committed offsets make later starts resume where they left.
 */
export function subscribeEnqueuer(bus: EventBus, deps: DeliveryEnqueuerDeps): Promise<() => Promise<void>> {
  const options = { group: deps.group ?? WEBHOOKS_CONSUMER_GROUP, fromBeginning: true };
  // A bus that hands over batches (the in-process one) gets one subscription statement per batch, not per event.
  if (bus.subscribeBatches) return bus.subscribeBatches((events) => enqueueEvents(deps, events).then(() => undefined), options);
  return bus.subscribe((event) => enqueueEvent(deps, event).then(() => undefined), options);
}
