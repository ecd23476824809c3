/**
 * The admin view of the audit log (an express router the admin API mounts under `/admin/v1/audit`):
 * `GET /?since=&until=&actor=&repository=&namespace=&type=&order=&n=&last=`, a page of entries oldest first
 * (`order=newest`: newest first), keyset by (time, id); `namespace` keeps the entries of the repositories of a namespace (the name, or beneath it).
 * A bad parameter is a 400 naming it.
 */
import express, { Router } from 'express';
import type { Database } from '@lading/metadata';
import { OciError } from '@lading/oci';
import { AUDIT_ORDERS, AuditCursor, AuditLogQuery, AuditOrder, queryAuditLog } from './audit-log';

/** What the audit admin router needs. */
export interface AuditAdminDeps {
  db: Database;
  /** The clock (epoch milliseconds) that a relative `since` or `until` (`1h`) counts back from. */
  now?: () => number;
}

/** The default and the largest page. */
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;
const RELATIVE = /^(\d{1,9})(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** RFC 3339 with a zone; Date.parse alone accepts too much. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const TYPE = /^io\.lading\.[a-z]+(\.[a-z]+)+$/;

function badParameter(name: string, what: string): OciError {
  return new OciError('UNSUPPORTED', `${name} must be ${what}`, { parameter: name }, { status: 400 });
}

function single(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw badParameter(name, 'given once, not empty');
  return value;
}

/** A point in time from RFC 3339 or a duration back from now (`90m`, `24h`, `7d`). */
function timeParameter(query: Record<string, unknown>, name: string, now: number): Date | undefined {
  const value = single(query, name);
  if (value === undefined) return undefined;
  const relative = RELATIVE.exec(value);
  if (relative) return new Date(now - Number(relative[1]) * UNIT_MS[relative[2] as keyof typeof UNIT_MS]);
  const ms = RFC3339.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw badParameter(name, 'an RFC 3339 time (2026-12-07T10:00:00Z) or a duration back from now (30m, 24h, 7d)');
  return new Date(ms);
}

/** The opaque cursor of a page's last entry, for `last=`. */
export function encodeAuditCursor(cursor: AuditCursor): string {
  return Buffer.from(`${cursor.time}|${cursor.id}`).toString('base64url');
}

function decodeCursor(value: string): AuditCursor {
  const [time, id, extra] = Buffer.from(value, 'base64url').toString('utf8').split('|');
  if (extra !== undefined || !time || !RFC3339.test(time) || !/^\d{1,18}$/.test(id ?? '')) throw badParameter('last', "the `next` of a previous page");
  return { time, id: Number(id) };
}

/** Parses the query of `GET /admin/v1/audit`; throws a 400 OciError naming a bad parameter. */
export function parseAuditQuery(query: Record<string, unknown>, now: number): AuditLogQuery {
  const known = new Set(['since', 'until', 'actor', 'repository', 'namespace', 'type', 'order', 'n', 'last']);
  for (const name of Object.keys(query)) if (!known.has(name)) throw badParameter(name.slice(0, 64), `one of ${[...known].join(', ')} (unknown parameter)`);
  const n = single(query, 'n');
  const limit = n === undefined ? DEFAULT_PAGE : Number(n);
  if (!/^\d+$/.test(n ?? '1') || !Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw badParameter('n', `an integer from 1 to ${MAX_PAGE}`);
  const since = timeParameter(query, 'since', now);
  const until = timeParameter(query, 'until', now);
  if (since && until && since >= until) throw badParameter('until', 'later than since');
  const type = single(query, 'type');
  if (type !== undefined && !TYPE.test(type)) throw badParameter('type', 'an event type such as io.lading.audit.login');
  const actor = single(query, 'actor');
  const repository = single(query, 'repository');
  if (actor !== undefined && actor.length > 256) throw badParameter('actor', 'at most 256 characters');
  if (repository !== undefined && repository.length > 256) throw badParameter('repository', 'at most 256 characters');
  const namespace = single(query, 'namespace');
  if (namespace !== undefined && namespace.length > 256) throw badParameter('namespace', 'at most 256 characters');
  const order = single(query, 'order') ?? 'oldest';
  if (!(AUDIT_ORDERS as readonly string[]).includes(order)) throw badParameter('order', AUDIT_ORDERS.join(' or '));
  const last = single(query, 'last');
  return { since, until, actor, repository, namespace, type, limit, order: order as AuditOrder, after: last === undefined ? undefined : decodeCursor(last) };
}

/** Creates the router: `GET /` lists a page of the audit log, `{entries, next}` (`next` is the `last=` of the next page). */
export function createAuditAdminRouter(deps: AuditAdminDeps): Router {
  const router = express.Router();
  const now = deps.now ?? Date.now;
  router.get('/', async (req, res) => {
    const page = await queryAuditLog(deps.db, parseAuditQuery(req.query as Record<string, unknown>, now()));
    res.json({ entries: page.entries, next: page.next ? encodeAuditCursor(page.next) : null });
  });
  return router;
}
