/** The outbox's parked rows: events the relay gave up publishing after many attempts, and requeueing one. */
import { useState } from 'preact/hooks';
import { DataTable } from '../../components/data-table';
import { ErrorMessage, LoadStatus } from '../../components/status';
import { useLoad } from '../../components/use-load';
import { formatTime } from '../../format';
import { useSession } from '../../session';

/** A parked row of `GET /admin/v1/outbox/parked`. */
export interface ParkedRow {
  id: string;
  repository: string;
  sequence: number;
  type: string;
  attempts: number;
  lastError: string | null;
  parkedAt: string;
}

/** The parked events section. */
export function OutboxSection() {
  const { api } = useSession();
  const parked = useLoad((signal) => api.json<{ parked: ParkedRow[] }>('/admin/v1/outbox/parked', { signal }), []);
  const [error, setError] = useState<string | null>(null);
  const requeue = async (row: ParkedRow) => {
    setError(null);
    try {
      await api.request(`/admin/v1/outbox/parked/${encodeURIComponent(row.id)}/requeue`, { method: 'POST' });
      parked.reload();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <section aria-labelledby="parked-heading">
      <h2 id="parked-heading">Parked events</h2>
      <p>Events the relay could not publish after repeated attempts wait here, in order, until requeued; later events of the same repository wait behind them.</p>
      <ErrorMessage error={error} />
      <LoadStatus state={parked} what="the parked events" />
      {parked.data ? (
        <DataTable
          rows={parked.data.parked}
          rowKey={(row) => row.id}
          empty="Nothing is parked."
          columns={[
            {
              header: 'Event',
              cell: (row) => (
                <>
                  {row.type} <span class="meta">{row.repository} #{row.sequence}</span>
                </>
              ),
            },
            { header: 'Attempts', cell: (row) => row.attempts },
            { header: 'Last error', cell: (row) => row.lastError ?? '—' },
            { header: 'Parked', cell: (row) => formatTime(row.parkedAt) },
            {
              header: 'Actions',
              cell: (row) => (
                <button type="button" class="secondary small" onClick={() => requeue(row)}>
                  Requeue<span class="visually-hidden"> {row.type} of {row.repository}</span>
                </button>
              ),
            },
          ]}
        />
      ) : null}
    </section>
  );
}
