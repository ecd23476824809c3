/** The event catalogue: every event type the registry emits, and the shape of its record (CloudEvents 1.0). */

/** Every event type, versioned by its name; consumers match on these strings. */
export const EVENT_TYPES = {
  manifestPushed: 'io.lading.manifest.pushed',
  manifestDeleted: 'io.lading.manifest.deleted',
  tagUpdated: 'io.lading.tag.updated',
  tagDeleted: 'io.lading.tag.deleted',
  blobUploaded: 'io.lading.blob.uploaded',
  blobMounted: 'io.lading.blob.mounted',
  blobDeleted: 'io.lading.blob.deleted',
  repositoryCreated: 'io.lading.repository.created',
  /** Defined for consumers and in the schemas; emitted once the registry has a repository-delete path (it has none yet). */
  repositoryDeleted: 'io.lading.repository.deleted',
  referrerAttached: 'io.lading.referrer.attached',
} as const;

/** One of the registry's event types. */
export type EventType = (typeof EVENT_TYPES)[keyof typeof EVENT_TYPES];

/** Who caused a change. */
export interface EventActor {
  name: string | null;
  type: 'user' | 'robot' | 'anonymous';
}

/** The HTTP request that caused a change. */
export interface EventRequest {
  id: string;
  addr: string;
  method: string;
  useragent: string;
}

/** A content descriptor as carried in events. */
export interface EventDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
}

/** The `data` of every event: one canonical record, with fields null where they do not apply. */
export interface EventData {
  repository: string;
  namespace: string;
  digest: string | null;
  mediaType: string | null;
  artifactType: string | null;
  size: number | null;
  tag: string | null;
  previousDigest: string | null;
  references: EventDescriptor[];
  subject: EventDescriptor | null;
  fromRepository: string | null;
  actor: EventActor;
  request: EventRequest | null;
}

/** A registry event as a CloudEvents 1.0 record, with Lading's extensions. */
export interface LadingEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: EventType;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  /** The repository: events of one repository keep their order. */
  partitionkey: string;
  /** Per-repository sequence, zero-padded so that it sorts as text. */
  sequence: string;
  /** The W3C trace context of the request that caused the event, when there was one. */
  traceparent?: string;
  data: EventData;
}
