/**
 * The audit page's filters and the URL that holds them (`/ui/admin/audit?period=7d&type=…`), so that a reload or a
 * shared link shows the same view and back and forward step through the filters chosen. What is absent from the URL
 * is the default (the last 24 hours, any type, newest first); a value the page does not offer (a hand-edited link)
 * falls back to the default, so a link never makes the page ask the API something it would refuse.
 */
import { queryString } from '../../api';

/** The audit types, as the type filter offers them. */
export const AUDIT_TYPES = [
  ['io.lading.audit.login', 'Logins'],
  ['io.lading.audit.admin', 'Admin changes'],
  ['io.lading.audit.pulls', 'Pulls'],
] as const;

/**
 * The periods the filter offers: a duration back from now, as the API takes it (`since=24h`), everything kept (''),
 * or between two times.
 */
export const AUDIT_PERIODS = [
  ['1h', 'the last hour'],
  ['24h', 'the last 24 hours'],
  ['7d', 'the last 7 days'],
  ['30d', 'the last 30 days'],
  ['', 'everything kept'],
  ['between', 'between two times…'],
] as const;

/** The orders the page offers, as the API takes them (`order=`). */
export const AUDIT_ORDERS = [
  ['newest', 'newest first'],
  ['oldest', 'oldest first'],
] as const;

/** The page size. */
export const AUDIT_PAGE = 50;

/** The filters, as the form holds them. */
export interface AuditFilters {
  /** One of AUDIT_PERIODS' values. */
  period: string;
  /** With the period `between`: datetime-local values (the browser's local time), '' for open. */
  from: string;
  to: string;
  actor: string;
  repository: string;
  type: string;
  /** The namespace (a namespace admin's filter); '' for none. */
  namespace: string;
  /** `newest` or `oldest`. */
  order: string;
}

/** The filters of a URL without any: the last 24 hours, newest first. */
export const DEFAULT_AUDIT_FILTERS: AuditFilters = { period: '24h', from: '', to: '', actor: '', repository: '', type: '', namespace: '', order: 'newest' };

/** How "everything kept" (the period '') is written in the URL, where an empty value would read as absent. */
const ALL = 'all';

/** A datetime-local value (the browser's local time) as RFC 3339 in UTC; '' (or nonsense) is ''. */
export function localToUtc(local: string): string {
  if (!local) return '';
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? '' : at.toISOString();
}

/** An RFC 3339 time as a datetime-local value in the browser's local time (to the minute); '' (or nonsense) is ''. */
export function utcToLocal(utc: string): string {
  const at = utc ? new Date(utc) : null;
  if (!at || Number.isNaN(at.getTime())) return '';
  const two = (n: number) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}T${two(at.getHours())}:${two(at.getMinutes())}`;
}

const offered = (choices: ReadonlyArray<readonly [string, string]>, value: string | null, fallback: string) =>
  value !== null && choices.some(([v]) => v === value) ? value : fallback;

/** The filters a console URL's query holds (`location.search`); what is absent or not offered is the default. */
export function auditFiltersOf(query: URLSearchParams): AuditFilters {
  const period = query.get('period') === ALL ? '' : offered(AUDIT_PERIODS, query.get('period'), DEFAULT_AUDIT_FILTERS.period);
  const between = period === 'between';
  return {
    period,
    from: between ? utcToLocal(query.get('from') ?? '') : '',
    to: between ? utcToLocal(query.get('to') ?? '') : '',
    actor: query.get('actor') ?? '',
    repository: query.get('repository') ?? '',
    type: offered(AUDIT_TYPES, query.get('type'), ''),
    namespace: query.get('namespace') ?? '',
    order: offered(AUDIT_ORDERS, query.get('order'), DEFAULT_AUDIT_FILTERS.order),
  };
}

/**
 * The query string (`?…`, or '' for the defaults) of a console URL holding the filters: defaults left out, text
 * trimmed, the times of a `between` period in UTC, so that a link means the same moment wherever it is opened.
 */
export function auditSearchOf(f: AuditFilters): string {
  const between = f.period === 'between';
  return queryString({
    period: f.period === '' ? ALL : f.period === DEFAULT_AUDIT_FILTERS.period ? '' : f.period,
    from: between ? localToUtc(f.from) : '',
    to: between ? localToUtc(f.to) : '',
    type: f.type,
    actor: f.actor.trim(),
    repository: f.repository.trim(),
    namespace: f.namespace,
    order: f.order === DEFAULT_AUDIT_FILTERS.order ? '' : f.order,
  });
}

/** The query of the audit API (`GET /admin/v1/audit`) for the filters and a page cursor. */
export function auditQuery(f: AuditFilters, last: string | null): string {
  const between = f.period === 'between';
  return queryString({
    since: between ? localToUtc(f.from) : f.period,
    until: between ? localToUtc(f.to) : '',
    actor: f.actor.trim(),
    repository: f.repository.trim(),
    type: f.type,
    namespace: f.namespace,
    order: f.order,
    n: AUDIT_PAGE,
    last,
  });
}
