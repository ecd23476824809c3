/**
 * The event types the live feed listens for (docs/events.md). The feed's server names each Server-Sent Event by its
 * type, and an EventSource only hands a named event to a listener of that name, so the console must know them all
 * (the repository events; audit events, under the partition key _audit, are never in the feed);
 * event-types.spec.ts keeps this list equal to the published schemas (docs/events/, generated from libs/events).
 */
export const FEED_EVENT_TYPES = [
  'io.lading.manifest.pushed',
  'io.lading.manifest.deleted',
  'io.lading.tag.updated',
  'io.lading.tag.deleted',
  'io.lading.blob.uploaded',
  'io.lading.blob.mounted',
  'io.lading.blob.deleted',
  'io.lading.repository.created',
  'io.lading.repository.deleted',
  'io.lading.referrer.attached',
] as const;

/** A short human description of an event type: "manifest pushed". */
export function describeEventType(type: string): string {
  return type.replace(/^io\.lading\./, '').replace('.', ' ');
}
