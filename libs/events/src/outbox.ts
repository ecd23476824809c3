/**
 * The transactional outbox: a change writes its event with `appendEvent` inside the change's own transaction,
 * so an event exists exactly when its change committed.
 */
import type { SqlExecutor } from '@lading/metadata';
import { namespaceOf } from '@lading/oci';
import type { IdGenerator } from './ids';
import { EVENT_TYPES, TRACEPARENT_GRAMMAR } from './event-types';
import type { EventActor, EventFieldsOf, EventProxy, EventRequest, EventType, LadingEvent } from './event-types';

/** What the outbox needs from its surroundings. */
export interface OutboxContext {
  /** The CloudEvents `source` of this process, e.g. `//registry.example.com/lading/manifest`. */
  source: string;
  ids: IdGenerator;
  now: () => Date;
}

/** Who and which request caused a change, and the request's trace context. */
export interface EventContext {
  actor: EventActor;
  request: EventRequest | null;
  traceparent?: string;
  /**
   * The pull-through cache the change came through, set only by the cache's fetches: every event of the change
   * carries it as `data.proxy`, so consumers (scanners) can tell cached content from pushed content.
   */
  proxy?: EventProxy;
}

/**
 * An event of type `T` to append: the caller states what changed, with the fields its type requires (`data` may be
 * left out when the type requires none); the outbox adds id, time, sequence and the fields' defaults.
 */
export type NewEventOf<T extends EventType> = { type: T; repository: string; subject: string; context: EventContext } & (Partial<EventFieldsOf<T>> extends EventFieldsOf<T>
  ? { data?: EventFieldsOf<T> }
  : { data: EventFieldsOf<T> });

/** An event to append, of any type: checked against its type's definition in the catalogue. */
export type NewEvent = { [T in EventType]: NewEventOf<T> }[EventType];

const SEQUENCE_WIDTH = 20;

/** The request's trace context if it is a well-formed W3C `traceparent`; a client's malformed header is dropped. */
export function validTraceparent(value: string | undefined): string | undefined {
  return value !== undefined && TRACEPARENT_GRAMMAR.test(value) ? value : undefined;
}

/**
 * Appends an event to the outbox in the caller's transaction. Takes the repository's next sequence number, which
 * also locks the repository row until commit: a repository's events commit in sequence order. One statement takes
 * the number and writes the row, with the number put into the stored record (zero-padded, as `sequence`).
 */
export async function appendEvent(tx: SqlExecutor, ctx: OutboxContext, event: NewEvent): Promise<LadingEvent> {
  const traceparent = validTraceparent(event.context.traceparent);
  const record: LadingEvent = {
    specversion: '1.0',
    id: ctx.ids(),
    source: ctx.source,
    type: event.type,
    subject: event.subject,
    time: ctx.now().toISOString(),
    datacontenttype: 'application/json',
    partitionkey: event.repository,
    sequence: '',
    ...(traceparent ? { traceparent } : {}),
    data: {
      repository: event.repository,
      namespace: namespaceOf(event.repository),
      digest: null,
      mediaType: null,
      artifactType: null,
      size: null,
      tag: null,
      previousDigest: null,
      references: [],
      subject: null,
      fromRepository: null,
      ...event.data,
      actor: event.context.actor,
      request: event.context.request,
      proxy: event.context.proxy ?? null,
    },
  };
  const written = await tx.query<{ sequence: number }>(
    `WITH next AS (UPDATE repositories SET event_seq = event_seq + 1 WHERE name = $1 RETURNING event_seq)
     INSERT INTO outbox (id, repository, sequence, type, event)
     SELECT $2, $1, event_seq, $3, jsonb_set($4::jsonb, '{sequence}', to_jsonb(lpad(event_seq::text, $5, '0'))) FROM next
     RETURNING sequence`,
    [event.repository, record.id, record.type, JSON.stringify(record), SEQUENCE_WIDTH],
  );
  if (written.rows.length === 0) throw new Error(`appendEvent: repository ${event.repository} does not exist`);
  record.sequence = String(written.rows[0].sequence).padStart(SEQUENCE_WIDTH, '0');
  return record;
}

/** What a deleted manifest's events tell: its digest, media type and size, and the tags that pointed at it. */
export interface DeletedManifestFacts {
  digest: string;
  mediaType: string;
  size: number;
  tags: readonly string[];
}

/**
 * Appends the events of a manifest deletion in the caller's transaction: a `tag.deleted` per tag that pointed at it,
 * then `manifest.deleted`. Shared by an API delete and the collector's eviction, so both tell subscribers the same.
 */
export async function appendManifestDeletion(tx: SqlExecutor, ctx: OutboxContext, repository: string, deleted: DeletedManifestFacts, context: EventContext): Promise<void> {
  for (const tag of deleted.tags) {
    await appendEvent(tx, ctx, { type: EVENT_TYPES.tagDeleted, repository, subject: `${repository}:${tag}`, context, data: { tag, digest: deleted.digest } });
  }
  await appendEvent(tx, ctx, {
    type: EVENT_TYPES.manifestDeleted,
    repository,
    subject: `${repository}@${deleted.digest}`,
    context,
    data: { digest: deleted.digest, mediaType: deleted.mediaType, size: deleted.size },
  });
}
