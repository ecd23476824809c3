/**
 * The audit log (`GET /admin/v1/audit`, docs/audit.md): logins, admin changes and pull counts, filtered by period,
 * actor, repository and type, a page at a time, oldest first within the period (the API's order), with each
 * entry's record a click away. A namespace admin reads the audit of its namespaces only: it picks one of its
 * (session `adminOf`), and every query names it (`namespace=`), as the API requires of it.
 */
import { useState } from 'preact/hooks';
import { queryString } from '../../api';
import { DataTable } from '../../components/data-table';
import { PrincipalName } from '../../components/principal-name';
import { LoadStatus } from '../../components/status';
import { useLoad } from '../../components/use-load';
import { formatTime } from '../../format';
import { adminNamespacesOf, isAdmin, useSession } from '../../session';

/** An entry of `GET /admin/v1/audit`. */
export interface AuditEntry {
  id: number;
  eventId: string;
  time: string;
  type: string;
  /** A user's name, `robot$<name>`, `wi$<rule>`, or null for anonymous. */
  actor: string | null;
  repository: string | null;
  record: Record<string, unknown>;
}

/** The audit types, as the type filter offers them. */
export const AUDIT_TYPES = [
  ['io.lading.audit.login', 'Logins'],
  ['io.lading.audit.admin', 'Admin changes'],
  ['io.lading.audit.pulls', 'Pulls'],
] as const;

/** The periods the filter offers: a duration back from now, as the API takes it (`since=24h`), or everything kept. */
const PERIODS = [
  ['1h', 'the last hour'],
  ['24h', 'the last 24 hours'],
  ['7d', 'the last 7 days'],
  ['30d', 'the last 30 days'],
  ['', 'everything kept'],
  ['between', 'between two times…'],
] as const;

/** The page size. */
export const AUDIT_PAGE = 50;

/** The filters, as the form holds them. */
interface Filters {
  period: string;
  from: string;
  to: string;
  actor: string;
  repository: string;
  type: string;
  /** The namespace (a namespace admin's filter); '' for none. */
  namespace: string;
}

const INITIAL: Filters = { period: '24h', from: '', to: '', actor: '', repository: '', type: '', namespace: '' };

/** A datetime-local value (the browser's local time) as RFC 3339 in UTC, for the API; '' stays ''. */
function utc(local: string): string {
  if (!local) return '';
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? '' : at.toISOString();
}

/** The query of the audit API for the filters and a page cursor. */
export function auditQuery(f: Filters, last: string | null): string {
  const between = f.period === 'between';
  return queryString({
    since: between ? utc(f.from) : f.period,
    until: between ? utc(f.to) : '',
    actor: f.actor.trim(),
    repository: f.repository.trim(),
    type: f.type,
    namespace: f.namespace,
    n: AUDIT_PAGE,
    last,
  });
}

const TYPE_LABELS: Record<string, string> = { 'io.lading.audit.login': 'login', 'io.lading.audit.admin': 'admin change', 'io.lading.audit.pulls': 'pulls' };

/** One sentence of what an entry says: a login's result, an admin change's action and target, a pull count. */
export function describeAudit(entry: AuditEntry): string {
  const r = entry.record;
  const request = r.request as { addr?: string } | null | undefined;
  const from = request?.addr ? ` from ${request.addr}` : '';
  switch (entry.type) {
    case 'io.lading.audit.login':
      return `${r.result === 'success' ? 'succeeded' : `failed${r.reason === 'limited' ? ' (too many attempts)' : ''}`} with a ${String(r.method ?? 'credential')}${from}`;
    case 'io.lading.audit.admin':
      return `${String(r.action ?? '')} (${String(r.target ?? '')}) answered ${String(r.status ?? '')}${from}`;
    case 'io.lading.audit.pulls':
      return `${String(r.count ?? 0)} manifest pulls between ${formatTime(String(r.windowStart ?? ''))} and ${formatTime(String(r.windowEnd ?? ''))}`;
    default:
      return '';
  }
}

/** The audit section. */
export function AuditSection() {
  const { api, session } = useSession();
  const mine = isAdmin(session) ? [] : adminNamespacesOf(session);
  // A namespace admin's filters always name one of its namespaces (the first until it picks another).
  const own = (f: Filters): Filters => (mine.length > 0 && !mine.includes(f.namespace) ? { ...f, namespace: mine[0] } : f);
  const [formState, setForm] = useState<Filters>(INITIAL);
  const [chosenFilters, setFilters] = useState<Filters>(INITIAL);
  const form = own(formState);
  const filters = own(chosenFilters);
  // The cursors of the pages before the one shown (null: the first page), so that "Previous" goes back.
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const last = cursors[cursors.length - 1];
  const index = cursors.length - 1;
  const query = auditQuery(filters, last);
  // The page's number travels with its entries: the previous page stays on screen while the next one loads.
  const page = useLoad(
    async (signal) => ({ index, ...(await api.json<{ entries: AuditEntry[]; next: string | null }>(`/admin/v1/audit${query}`, { signal })) }),
    // The chosen filters (a new object on every submit, which reloads) and the query: a namespace admin's filters
    // are made afresh on every render, so they cannot be a dependency themselves.
    [chosenFilters, last, query],
  );
  const [open, setOpen] = useState<number | null>(null);
  const set = (key: keyof Filters) => (e: { currentTarget: HTMLInputElement | HTMLSelectElement }) => setForm({ ...form, [key]: e.currentTarget.value });
  const first = (page.data?.index ?? 0) * AUDIT_PAGE + 1;
  const entries = page.data?.entries ?? [];
  return (
    <>
      <section aria-labelledby="audit-filter-heading">
        <h2 id="audit-filter-heading">Filter</h2>
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            setFilters(form);
            setCursors([null]);
            setOpen(null);
          }}
        >
          <div class="filters">
            <div class="field">
              <label for="audit-period">Period</label>
              <select id="audit-period" value={form.period} onChange={set('period')}>
                {PERIODS.map(([value, label]) => (
                  <option key={value} value={value}>
                    {label}
                  </option>
                ))}
              </select>
            </div>
            {form.period === 'between' ? (
              <>
                <div class="field">
                  <label for="audit-from">From (your local time)</label>
                  <input id="audit-from" type="datetime-local" value={form.from} onInput={set('from')} />
                </div>
                <div class="field">
                  <label for="audit-to">Until (your local time)</label>
                  <input id="audit-to" type="datetime-local" value={form.to} onInput={set('to')} />
                </div>
              </>
            ) : null}
            <div class="field">
              <label for="audit-type">Type</label>
              <select id="audit-type" value={form.type} onChange={set('type')}>
                <option value="">any</option>
                {AUDIT_TYPES.map(([value, label]) => (
                  <option key={value} value={value}>
                    {label}
                  </option>
                ))}
              </select>
            </div>
            <div class="field">
              <label for="audit-actor">Actor</label>
              <input id="audit-actor" value={form.actor} onInput={set('actor')} placeholder="alice, robot$ci, wi$deploy" aria-describedby="audit-actor-hint" />
              <span class="hint" id="audit-actor-hint">
                Exactly as the log names it: a user, robot$name or wi$rule.
              </span>
            </div>
            {mine.length > 0 ? (
              <div class="field">
                <label for="audit-namespace">Namespace</label>
                <select id="audit-namespace" required value={form.namespace} onChange={set('namespace')}>
                  {mine.map((n) => (
                    <option key={n} value={n}>
                      {n}
                    </option>
                  ))}
                </select>
              </div>
            ) : null}
            <div class="field">
              <label for="audit-repository">Repository</label>
              <input id="audit-repository" value={form.repository} onInput={set('repository')} placeholder="team/app" />
            </div>
          </div>
          <button type="submit">Show entries</button>
        </form>
      </section>
      <section aria-labelledby="audit-heading">
        <h2 id="audit-heading">Entries</h2>
        <LoadStatus state={page} what="the audit log" />
        {page.data ? (
          <>
            {entries.length ? (
              <p class="meta" role="status">
                Entries {first} to {first + entries.length - 1}, oldest first.
              </p>
            ) : null}
            <DataTable
              rows={entries}
              rowKey={(e) => e.id}
              empty="No entries match."
              columns={[
                { header: 'Time', cell: (e) => formatTime(e.time) },
                { header: 'Type', cell: (e) => TYPE_LABELS[e.type] ?? e.type },
                { header: 'Actor', cell: (e) => <PrincipalName name={e.actor} none="anonymous" /> },
                { header: 'Repository', cell: (e) => e.repository ?? '—' },
                { header: 'What', cell: (e) => describeAudit(e) },
                {
                  header: 'Record',
                  cell: (e) => (
                    <button type="button" class="secondary small" aria-expanded={open === e.id} aria-controls={`audit-record-${e.id}`} onClick={() => setOpen(open === e.id ? null : e.id)}>
                      {open === e.id ? 'Hide' : 'Show'}
                      <span class="visually-hidden"> the record of {formatTime(e.time)}</span>
                    </button>
                  ),
                },
              ]}
            />
            {entries
              .filter((e) => e.id === open)
              .map((e) => (
                <section key={e.id} id={`audit-record-${e.id}`} aria-label={`The record of ${formatTime(e.time)}`}>
                  <h3>
                    The record of {formatTime(e.time)} <span class="meta">(event {e.eventId})</span>
                  </h3>
                  <pre class="viewer" tabIndex={0}>
                    {JSON.stringify(e.record, null, 2)}
                  </pre>
                </section>
              ))}
            <nav class="pager" aria-label="Audit pages">
              <button type="button" class="secondary" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
                Previous page
              </button>
              <button type="button" class="secondary" disabled={!page.data.next} onClick={() => page.data?.next && setCursors([...cursors, page.data.next])}>
                Next page
              </button>
            </nav>
          </>
        ) : null}
      </section>
    </>
  );
}
