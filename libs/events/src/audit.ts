/**
 * The audit trail's writer: an audit event goes to the outbox (published to the bus like every event, with the
 * partition key `_audit`) and to the queryable audit log, in the caller's transaction, so the two never disagree.
 */
import type { Request, Response } from 'express';
import type { SqlExecutor } from '@lading/metadata';
import { AUDIT_EVENT_TYPES, AUDIT_PARTITION_KEY } from './event-types';
import type { AuditDataOf, AuditEventOf, AuditEventType, EventActor } from './event-types';
import type { OutboxContext } from './outbox';
import { validTraceparent } from './outbox';

/** An audit event to append: its type and data; the writer adds id, time, sequence and subject. */
export interface NewAuditEvent<T extends AuditEventType> {
  type: T;
  data: AuditDataOf<T>;
  traceparent?: string;
}

/** The principal of an actor as the audit log stores it: a user's name, `robot$<name>`, or null for anonymous. */
export function auditPrincipalOf(actor: EventActor): string | null {
  if (actor.type === 'anonymous' || actor.name === null) return null;
  return actor.type === 'robot' ? `robot$${actor.name}` : actor.name;
}

/** One row of the audit log as the writer derives it from an event. */
interface AuditLogRow {
  actor: string | null;
  repository: string | null;
  record: unknown;
}

/** The audit log rows of an event: one per counted (principal, repository) of a pull batch, else one. */
function logRowsOf(event: AuditEventOf<AuditEventType>): AuditLogRow[] {
  if (event.type === AUDIT_EVENT_TYPES.pulls) {
    const { windowStart, windowEnd } = event.data;
    return event.data.pulls.map((p) => ({ actor: auditPrincipalOf(p.actor), repository: p.repository, record: { windowStart, windowEnd, ...p } }));
  }
  return [{ actor: auditPrincipalOf(event.data.actor), repository: null, record: event.data }];
}

const SEQUENCE_WIDTH = 20;

/**
 * Appends an audit event in the caller's transaction: its outbox row (numbered by `audit_event_seq`) and its audit
 * log rows. Two statements, whatever the number of rows: a pull batch of thousands costs the same.
 */
export async function appendAuditEvent<T extends AuditEventType>(tx: SqlExecutor, ctx: OutboxContext, event: NewAuditEvent<T>): Promise<AuditEventOf<T>> {
  const traceparent = validTraceparent(event.traceparent);
  const data = event.data as AuditDataOf<AuditEventType>;
  const subject = 'pulls' in data ? 'pulls' : (auditPrincipalOf(data.actor) ?? 'anonymous');
  const record = {
    specversion: '1.0',
    id: ctx.ids(),
    source: ctx.source,
    type: event.type,
    subject,
    time: ctx.now().toISOString(),
    datacontenttype: 'application/json',
    partitionkey: AUDIT_PARTITION_KEY,
    sequence: '',
    ...(traceparent ? { traceparent } : {}),
    data: event.data,
  } as AuditEventOf<T>;
  const written = await tx.query<{ sequence: string }>(
    `WITH next AS (SELECT nextval('audit_event_seq') AS n)
     INSERT INTO outbox (id, repository, sequence, type, event)
     SELECT $1, $2, n, $3, jsonb_set($4::jsonb, '{sequence}', to_jsonb(lpad(n::text, $5, '0'))) FROM next
     RETURNING sequence::text AS sequence`,
    [record.id, AUDIT_PARTITION_KEY, record.type, JSON.stringify(record), SEQUENCE_WIDTH],
  );
  record.sequence = written.rows[0].sequence.padStart(SEQUENCE_WIDTH, '0');
  await tx.query(
    `INSERT INTO audit_log (event_id, at, type, actor, repository, record)
     SELECT $1, $2::timestamptz, $3, u.actor, u.repository, u.record FROM jsonb_to_recordset($4::jsonb) AS u (actor text, repository text, record jsonb)`,
    [record.id, record.time, record.type, JSON.stringify(logRowsOf(record as AuditEventOf<AuditEventType>))],
  );
  return record;
}

/**
 * Runs an admin change in one transaction with its audit record (the auth service's `AuthAudit.change`): `work`
 * changes through `tx` only and returns the answer, sent with `status` (a number, or read from `work`'s result).
 * When `work` throws or the record cannot be written, both roll back. The admin API passes one to the routers it
 * mounts; a router given none runs `work` in a plain transaction.
 */
export type AdminChange = <T>(req: Request, res: Response, status: number | ((result: T) => number), work: (tx: SqlExecutor) => Promise<T>) => Promise<T>;
