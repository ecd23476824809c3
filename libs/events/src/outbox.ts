/**
 * The transactional outbox: a change writes its event with `appendEvent` inside the change's own transaction,
 * so an event exists exactly when its change committed.
 */
import type { SqlExecutor } from '@lading/metadata';
import { namespaceOf } from '@lading/oci';
import type { IdGenerator } from './ids';
import type { EventActor, EventData, EventRequest, EventType, LadingEvent } from './event-types';

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
}

/** An event to append: the caller states what changed; the outbox adds id, time and sequence. */
export interface NewEvent {
  type: EventType;
  repository: string;
  subject: string;
  context: EventContext;
  data?: Partial<Omit<EventData, 'actor' | 'request' | 'repository' | 'namespace'>>;
}

const SEQUENCE_WIDTH = 20;

/** A W3C `traceparent` (version-traceid-parentid-flags, lowercase hex, ids not all zero, version not ff). */
const TRACEPARENT = /^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The request's trace context if it is a well-formed W3C `traceparent`; a client's malformed header is dropped. */
export function validTraceparent(value: string | undefined): string | undefined {
  return value !== undefined && TRACEPARENT.test(value) ? value : undefined;
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
