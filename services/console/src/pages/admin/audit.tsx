/**
 * The audit log (`GET /admin/v1/audit`, docs/audit.md): logins, admin changes and pull counts, filtered by period,
 * actor, repository and type, a page at a time, newest first unless asked otherwise, with each entry's record a
 * click away. The filters chosen live in the URL (audit-filters.ts): showing entries pushes a history entry, so a
 * reload or a shared link shows the same entries and back and forward step through the filters. A namespace admin
 * reads the audit of its namespaces only: it picks one of its (session `adminOf`), and every query names it
 * (`namespace=`), as the API requires of it.
 */
import { useState } from 'preact/hooks';
import { DataTable } from '../../components/data-table';
import { PrincipalName } from '../../components/principal-name';
import { LoadStatus } from '../../components/status';
import { useLoad } from '../../components/use-load';
import { formatTime } from '../../format';
import { href, navigate } from '../../router';
import { adminNamespacesOf, isAdmin, useSession } from '../../session';
import { AUDIT_ORDERS, AUDIT_PAGE, AUDIT_PERIODS, AUDIT_TYPES, type AuditFilters, auditFiltersOf, auditQuery, auditSearchOf } from './audit-filters';

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

/** The audit section; `query` is the page URL's, which holds the filters. */
export function AuditSection({ query: urlQuery }: { query: URLSearchParams }) {
  const { api, session } = useSession();
  const mine = isAdmin(session) ? [] : adminNamespacesOf(session);
  // A namespace admin's filters always name one of its namespaces (the first until it picks another).
  const own = (f: AuditFilters): AuditFilters => (mine.length > 0 && !mine.includes(f.namespace) ? { ...f, namespace: mine[0] } : f);
  const search = urlQuery.toString();
  const filters = own(auditFiltersOf(urlQuery));
  // The form's edits, the pages walked and the record open belong to the filters of one URL: other filters in it
  // (a link followed, back or forward) start afresh from what the URL holds, on their first page.
  const [edited, setEdited] = useState<{ search: string; form: AuditFilters } | null>(null);
  const form = own(edited?.search === search ? edited.form : filters);
  // The cursors of the pages before the one shown (null: the first page), so that "Previous" goes back.
  const [walked, setWalked] = useState<{ search: string; cursors: Array<string | null> }>({ search, cursors: [null] });
  const cursors = walked.search === search ? walked.cursors : [null];
  const setCursors = (next: Array<string | null>) => setWalked({ search, cursors: next });
  // Bumped by showing the entries of the filters already shown: they are asked for afresh.
  const [asked, setAsked] = useState(0);
  const [opened, setOpened] = useState<{ search: string; id: number } | null>(null);
  const open = opened?.search === search ? opened.id : null;
  const setOpen = (id: number | null) => setOpened(id === null ? null : { search, id });
  const last = cursors[cursors.length - 1];
  const index = cursors.length - 1;
  const apiQuery = auditQuery(filters, last);
  // The page's number travels with its entries: the previous page stays on screen while the next one loads.
  const page = useLoad(
    async (signal) => ({ index, ...(await api.json<{ entries: AuditEntry[]; next: string | null }>(`/admin/v1/audit${apiQuery}`, { signal })) }),
    [apiQuery, asked],
  );
  const set = (key: keyof AuditFilters) => (e: { currentTarget: HTMLInputElement | HTMLSelectElement }) => setEdited({ search, form: { ...form, [key]: e.currentTarget.value } });
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
            const to = auditSearchOf(form);
            // Shown, the form's edits are the URL's filters: coming back to this URL shows what it holds.
            setEdited(null);
            if (to === auditSearchOf(filters)) {
              setCursors([null]);
              setOpen(null);
              setAsked(asked + 1);
            } else navigate(href.admin('audit', to));
          }}
        >
          <div class="filters">
            <div class="field">
              <label for="audit-period">Period</label>
              <select id="audit-period" value={form.period} onChange={set('period')}>
                {AUDIT_PERIODS.map(([value, label]) => (
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
            <div class="field">
              <label for="audit-order">Order</label>
              <select id="audit-order" value={form.order} onChange={set('order')}>
                {AUDIT_ORDERS.map(([value, label]) => (
                  <option key={value} value={value}>
                    {label}
                  </option>
                ))}
              </select>
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
                Entries {first} to {first + entries.length - 1}, {filters.order === 'oldest' ? 'oldest' : 'newest'} first.
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
