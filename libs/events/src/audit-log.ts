/**
 * Queries of the audit log (migration 0014): pages of entries filtered by time, actor, repository and type, keyset
 * by (time, id), and the pruning of entries past `audit.retention` in bounded batches.
 */
import type { SqlExecutor } from '@lading/metadata';

/** An entry of the audit log. */
export interface AuditLogEntry {
  /** The entry's own number (a pull batch has one entry per principal and repository, under one event id). */
  id: number;
  eventId: string;
  time: string;
  type: string;
  /** A user's name, `robot$<name>`, or null for anonymous. */
  actor: string | null;
  repository: string | null;
  /** The event's data (for a pull batch: the window and this entry's principal, repository and count). */
  record: unknown;
}

/**
 * Where a page starts: past the entry at `time` with `id` (the last of the previous page), in the page's order. The
 * same cursor works in either order: it names a place in the (time, id) keyset, not a direction.
 */
export interface AuditCursor {
  time: string;
  id: number;
}

/** What to list. */
export interface AuditLogQuery {
  /** Entries at or after this time. */
  since?: Date;
  /** Entries before this time. */
  until?: Date;
  /** A user's name or `robot$<name>`. */
  actor?: string;
  repository?: string;
  /** Entries of the repositories of a namespace: the name itself, or beneath it (`team` covers `team/app`). */
  namespace?: string;
  type?: string;
  after?: AuditCursor;
  limit: number;
  /** `oldest` (the default) lists by (time, id) ascending, `newest` descending. */
  order?: AuditOrder;
}

/** The orders the audit log is listed in. */
export const AUDIT_ORDERS = ['oldest', 'newest'] as const;

/** Which entries come first: the oldest, or the newest. */
export type AuditOrder = (typeof AUDIT_ORDERS)[number];

/** A page of the audit log in the order asked for, with the cursor of the next page (null on the last). */
export interface AuditLogPage {
  entries: AuditLogEntry[];
  next: AuditCursor | null;
}

/**
 * Lists a page of the audit log, oldest first unless `order` is `newest`. Keyset paging by (time, id), which is
 * unique: entries written while a client pages never shift a page already seen, and none is listed twice. Newest
 * first, entries written after the first page appear only on a new first page, never in the middle.
 */
export async function queryAuditLog(db: SqlExecutor, q: AuditLogQuery): Promise<AuditLogPage> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (q.since) where.push(`at >= ${param(q.since.toISOString())}::timestamptz`);
  if (q.until) where.push(`at < ${param(q.until.toISOString())}::timestamptz`);
  if (q.actor !== undefined) where.push(`actor = ${param(q.actor)}`);
  if (q.repository !== undefined) where.push(`repository = ${param(q.repository)}`);
  if (q.namespace !== undefined) {
    const ns = param(q.namespace);
    where.push(`(repository = ${ns} OR left(repository, length(${ns}) + 1) = ${ns} || '/')`);
  }
  if (q.type !== undefined) where.push(`type = ${param(q.type)}`);
  const newest = q.order === 'newest';
  if (q.after) where.push(`(at, id) ${newest ? '<' : '>'} (${param(q.after.time)}::timestamptz, ${param(q.after.id)}::bigint)`);
  const r = await db.query<{ id: string; event_id: string; at: Date | string; type: string; actor: string | null; repository: string | null; record: unknown }>(
    `SELECT id::text AS id, event_id::text AS event_id, at, type, actor, repository, record FROM audit_log
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${newest ? 'at DESC, id DESC' : 'at, id'} LIMIT ${param(q.limit + 1)}`,
    params,
  );
  const entries = r.rows.slice(0, q.limit).map((row) => ({
    id: Number(row.id),
    eventId: row.event_id,
    time: new Date(row.at).toISOString(),
    type: row.type,
    actor: row.actor,
    repository: row.repository,
    record: typeof row.record === 'string' ? JSON.parse(row.record) : row.record,
  }));
  const last = entries[entries.length - 1];
  return { entries, next: r.rows.length > q.limit && last ? { time: last.time, id: last.id } : null };
}

/**
 * Deletes audit log entries older than `retentionMs`, oldest first, `batchSize` per statement (so one prune never
 * holds many locks or a long transaction); resolves with how many it deleted. Concurrent pruners skip each other's rows.
 */
export async function pruneAuditLog(db: SqlExecutor, retentionMs: number, batchSize = 1000): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await db.query(
      `DELETE FROM audit_log WHERE id IN (
         SELECT id FROM audit_log WHERE at < now() - $1 * interval '1 millisecond' ORDER BY at, id LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [retentionMs, batchSize],
    );
    total += deleted.rowCount;
    if (deleted.rowCount < batchSize) return total;
  }
}
