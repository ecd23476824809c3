/** The outbox's parked rows: events the relay gave up publishing after many attempts, and requeueing one. */
import { useState } from 'preact/hooks';
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
      {parked.data?.parked.length === 0 ? <p>Nothing is parked.</p> : null}
      {parked.data?.parked.length ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last error</th>
                <th scope="col">Parked</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {parked.data.parked.map((row) => (
                <tr key={row.id}>
                  <th scope="row">
                    {row.type} <span class="meta">{row.repository} #{row.sequence}</span>
                  </th>
                  <td>{row.attempts}</td>
                  <td>{row.lastError ?? '—'}</td>
                  <td>{formatTime(row.parkedAt)}</td>
                  <td>
                    <button type="button" class="secondary small" onClick={() => requeue(row)}>
                      Requeue<span class="visually-hidden"> {row.type} of {row.repository}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}
