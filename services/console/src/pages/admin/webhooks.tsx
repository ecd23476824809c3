/** Webhooks: the subscriptions, each one's deliveries (dead letters among them), and redelivering one. */
import { useState } from 'preact/hooks';
import { ErrorMessage, LoadStatus } from '../../components/status';
import { useLoad } from '../../components/use-load';
import { formatTime } from '../../format';
import { useSession } from '../../session';

/** A subscription of `GET /admin/v1/webhooks`. */
export interface Webhook {
  id: string;
  name: string;
  namespace: string;
  url: string;
  format: string;
  eventTypes: string[];
  enabled: boolean;
}

/** A delivery of `GET /admin/v1/webhooks/<id>/deliveries`. */
export interface Delivery {
  id: string;
  eventType: string;
  repository: string;
  status: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  finishedAt: string | null;
}

/** The delivery statuses to filter by ("dead" is the dead letters). */
const STATUSES = ['', 'pending', 'delivered', 'dead'] as const;

function Deliveries({ webhook }: { webhook: Webhook }) {
  const { api } = useSession();
  const [status, setStatus] = useState<(typeof STATUSES)[number]>('');
  const [error, setError] = useState<string | null>(null);
  const base = `/admin/v1/webhooks/${encodeURIComponent(webhook.id)}/deliveries`;
  const deliveries = useLoad((signal) => api.json<{ deliveries: Delivery[] }>(`${base}?n=50${status ? `&status=${status}` : ''}`, { signal }), [base, status]);
  const redeliver = async (d: Delivery) => {
    setError(null);
    try {
      await api.request(`${base}/${encodeURIComponent(d.id)}/redeliver`, { method: 'POST' });
      deliveries.reload();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <section aria-labelledby="deliveries-heading">
      <h2 id="deliveries-heading">Deliveries of {webhook.name}</h2>
      <div class="field inline">
        <label for="delivery-status">Status</label>
        <select id="delivery-status" value={status} onChange={(e) => setStatus(e.currentTarget.value as typeof status)}>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s === '' ? 'any' : s === 'dead' ? 'dead letters' : s}
            </option>
          ))}
        </select>
      </div>
      <ErrorMessage error={error} />
      <LoadStatus state={deliveries} what="the deliveries" />
      {deliveries.data?.deliveries.length === 0 ? <p>No deliveries.</p> : null}
      {deliveries.data?.deliveries.length ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last answer</th>
                <th scope="col">Created</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {deliveries.data.deliveries.map((d) => (
                <tr key={d.id}>
                  <th scope="row">
                    {d.eventType} <span class="meta">{d.repository}</span>
                  </th>
                  <td>{d.status}</td>
                  <td>{d.attempts}</td>
                  <td>{d.lastStatus ?? d.lastError ?? '—'}</td>
                  <td>{formatTime(d.createdAt)}</td>
                  <td>
                    {d.status === 'pending' ? null : (
                      <button type="button" class="secondary small" onClick={() => redeliver(d)}>
                        Redeliver<span class="visually-hidden"> {d.eventType} of {d.repository}</span>
                      </button>
                    )}
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

/** The webhooks section. */
export function WebhooksSection() {
  const { api } = useSession();
  const webhooks = useLoad((signal) => api.json<{ webhooks: Webhook[] }>('/admin/v1/webhooks', { signal }), []);
  const [chosen, setChosen] = useState<string | null>(null);
  const selected = webhooks.data?.webhooks.find((w) => w.id === chosen) ?? null;
  return (
    <>
      <section aria-labelledby="webhooks-heading">
        <h2 id="webhooks-heading">Subscriptions</h2>
        <LoadStatus state={webhooks} what="the webhooks" />
        {webhooks.data?.webhooks.length === 0 ? <p>No webhooks. Create them with lading-admin or the admin API (docs/webhooks.md).</p> : null}
        <ul class="cards">
          {webhooks.data?.webhooks.map((w) => (
            <li key={w.id} class="card">
              <h3>
                {w.name} <span class="badge">{w.enabled ? 'enabled' : 'disabled'}</span>
              </h3>
              <p class="meta">
                {w.namespace || 'every namespace'} → <code>{w.url}</code> ({w.format}); {w.eventTypes.length ? w.eventTypes.join(', ') : 'every event type'}
              </p>
              <button type="button" class="secondary small" aria-pressed={w.id === chosen} onClick={() => setChosen(w.id)}>
                Deliveries<span class="visually-hidden"> of {w.name}</span>
              </button>
            </li>
          ))}
        </ul>
      </section>
      {selected ? <Deliveries key={selected.id} webhook={selected} /> : null}
    </>
  );
}
