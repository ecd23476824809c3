/**
 * Webhooks: create a subscription (its signing secret shown once), rotate its secret (the new one shown once), delete
 * it, and each one's deliveries (dead letters among them), redelivering one.
 */
import { useState } from 'preact/hooks';
import { ConfirmDialog } from '../../components/confirm-dialog';
import { DataTable } from '../../components/data-table';
import { SecretOnce } from '../../components/secret-once';
import { ErrorMessage, LoadStatus } from '../../components/status';
import { FEED_EVENT_TYPES, describeEventType } from '../../event-types';
import { useLoad } from '../../components/use-load';
import { formatTime } from '../../format';
import { adminNamespacesOf, isAdmin, useSession } from '../../session';

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
      {deliveries.data ? (
        <DataTable
          rows={deliveries.data.deliveries}
          rowKey={(d) => d.id}
          empty="No deliveries."
          columns={[
            {
              header: 'Event',
              cell: (d) => (
                <>
                  {d.eventType} <span class="meta">{d.repository}</span>
                </>
              ),
            },
            { header: 'Status', cell: (d) => d.status },
            { header: 'Attempts', cell: (d) => d.attempts },
            { header: 'Last answer', cell: (d) => d.lastStatus ?? d.lastError ?? '—' },
            { header: 'Created', cell: (d) => formatTime(d.createdAt) },
            {
              header: 'Actions',
              cell: (d) =>
                d.status === 'pending' ? null : (
                  <button type="button" class="secondary small" onClick={() => redeliver(d)}>
                    Redeliver<span class="visually-hidden"> {d.eventType} of {d.repository}</span>
                  </button>
                ),
            },
          ]}
        />
      ) : null}
    </section>
  );
}

/** The formats a subscription may deliver in (libs/webhooks WEBHOOK_FORMATS). */
const FORMATS = [
  ['cloudevents', 'CloudEvents (JSON, structured mode)'],
  ['distribution', 'Distribution notifications (Docker registry envelope)'],
] as const;

/** The form of a new subscription. */
interface NewWebhook {
  name: string;
  namespace: string;
  url: string;
  format: string;
  eventTypes: string[];
  enabled: boolean;
}

const EMPTY: NewWebhook = { name: '', namespace: '', url: '', format: 'cloudevents', eventTypes: [], enabled: true };

function NewWebhookForm({ onCreated }: { onCreated(webhook: Webhook & { secret: string }): void }) {
  const { api, session } = useSession();
  // A namespace admin's webhooks are confined to one of its namespaces: it picks one, and cannot leave it empty.
  const mine = adminNamespacesOf(session);
  const [typed, setForm] = useState<NewWebhook>(EMPTY);
  const form = isAdmin(session) || mine.includes(typed.namespace) ? typed : { ...typed, namespace: mine[0] ?? '' };
  const [error, setError] = useState<string | null>(null);
  const toggle = (type: string, on: boolean) => setForm({ ...form, eventTypes: on ? [...form.eventTypes, type] : form.eventTypes.filter((t) => t !== type) });
  const create = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      onCreated(await api.json<Webhook & { secret: string }>('/admin/v1/webhooks', { method: 'POST', json: form }));
      setForm(EMPTY);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <section aria-labelledby="new-webhook-heading">
      <h2 id="new-webhook-heading">New webhook</h2>
      <form class="form" onSubmit={create}>
        <div class="field">
          <label for="webhook-name">Name</label>
          <input id="webhook-name" required maxLength={100} value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
        </div>
        <div class="field">
          <label for="webhook-url">URL</label>
          <input id="webhook-url" type="url" required placeholder="https://ci.example.com/hooks/lading" value={form.url} onInput={(e) => setForm({ ...form, url: e.currentTarget.value })} aria-describedby="webhook-url-hint" />
          <span class="hint" id="webhook-url-hint">
            A private or loopback address is refused unless the registry's webhooks.allowList names it.
          </span>
        </div>
        {isAdmin(session) ? (
          <div class="field">
            <label for="webhook-namespace">Namespace (optional)</label>
            <input id="webhook-namespace" value={form.namespace} onInput={(e) => setForm({ ...form, namespace: e.currentTarget.value })} aria-describedby="webhook-namespace-hint" />
            <span class="hint" id="webhook-namespace-hint">
              Only repositories under this prefix; empty for every repository.
            </span>
          </div>
        ) : (
          <div class="field">
            <label for="webhook-namespace">Namespace</label>
            <select id="webhook-namespace" required value={form.namespace} onChange={(e) => setForm({ ...form, namespace: e.currentTarget.value })} aria-describedby="webhook-namespace-hint">
              {mine.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
            <span class="hint" id="webhook-namespace-hint">
              Only repositories under this namespace of yours.
            </span>
          </div>
        )}
        <div class="field">
          <label for="webhook-format">Format</label>
          <select id="webhook-format" value={form.format} onChange={(e) => setForm({ ...form, format: e.currentTarget.value })}>
            {FORMATS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <fieldset class="field checks" aria-describedby="webhook-types-hint">
          <legend>Event types</legend>
          <span class="hint" id="webhook-types-hint">
            None ticked: every event type.
          </span>
          {FEED_EVENT_TYPES.map((type) => (
            <div class="check" key={type}>
              <input id={`webhook-type-${type}`} type="checkbox" checked={form.eventTypes.includes(type)} onChange={(e) => toggle(type, e.currentTarget.checked)} />
              <label for={`webhook-type-${type}`}>{describeEventType(type)}</label>
            </div>
          ))}
        </fieldset>
        <div class="field check">
          <input id="webhook-enabled" type="checkbox" checked={form.enabled} onChange={(e) => setForm({ ...form, enabled: e.currentTarget.checked })} />
          <label for="webhook-enabled">Enabled: deliver from now on</label>
        </div>
        <ErrorMessage error={error} />
        <button type="submit">Create webhook</button>
      </form>
    </section>
  );
}

/** The webhooks section. */
export function WebhooksSection() {
  const { api } = useSession();
  const webhooks = useLoad((signal) => api.json<{ webhooks: Webhook[] }>('/admin/v1/webhooks', { signal }), []);
  const [chosen, setChosen] = useState<string | null>(null);
  const [secret, setSecret] = useState<{ title: string; secret: string } | null>(null);
  const [rotating, setRotating] = useState<Webhook | null>(null);
  const [deleting, setDeleting] = useState<Webhook | null>(null);
  const selected = webhooks.data?.webhooks.find((w) => w.id === chosen) ?? null;
  const path = (w: Webhook) => `/admin/v1/webhooks/${encodeURIComponent(w.id)}`;
  return (
    <>
      {secret ? (
        <SecretOnce
          title={secret.title}
          secret={secret.secret}
          kept="Lading keeps it sealed, to sign each delivery (the receiver checks the signature with it), and never shows it again. If it is lost, rotate it."
          onDone={() => setSecret(null)}
        />
      ) : null}
      <NewWebhookForm
        onCreated={(created) => {
          setSecret({ title: `Webhook ${created.name} created: its signing secret`, secret: created.secret });
          webhooks.reload();
        }}
      />
      <section aria-labelledby="webhooks-heading">
        <h2 id="webhooks-heading">Subscriptions</h2>
        <LoadStatus state={webhooks} what="the webhooks" />
        {webhooks.data ? (
          <DataTable
            rows={webhooks.data.webhooks}
            rowKey={(w) => w.id}
            empty="No webhooks yet."
            columns={[
              { header: 'Name', cell: (w) => w.name },
              { header: 'URL', cell: (w) => <code>{w.url}</code> },
              { header: 'Repositories', cell: (w) => w.namespace || 'every namespace' },
              { header: 'Events', cell: (w) => (w.eventTypes.length ? w.eventTypes.map(describeEventType).join(', ') : 'every event type') },
              { header: 'Format', cell: (w) => w.format },
              { header: 'State', cell: (w) => (w.enabled ? 'enabled' : 'disabled') },
              {
                header: 'Actions',
                class: 'row-actions',
                cell: (w) => (
                  <>
                    <button type="button" class="secondary small" aria-pressed={w.id === chosen} onClick={() => setChosen(w.id)}>
                      Deliveries<span class="visually-hidden"> of {w.name}</span>
                    </button>
                    <button type="button" class="secondary small" onClick={() => setRotating(w)}>
                      Rotate secret<span class="visually-hidden"> of {w.name}</span>
                    </button>
                    <button type="button" class="danger small" onClick={() => setDeleting(w)}>
                      Delete<span class="visually-hidden"> webhook {w.name}</span>
                    </button>
                  </>
                ),
              },
            ]}
          />
        ) : null}
      </section>
      {selected ? <Deliveries key={selected.id} webhook={selected} /> : null}
      {rotating ? (
        <ConfirmDialog
          title={`Rotate the secret of ${rotating.name}?`}
          confirmLabel="Rotate secret"
          onClose={() => setRotating(null)}
          onConfirm={async () => {
            const rotated = await api.json<{ id: string; secret: string }>(`${path(rotating)}/rotate`, { method: 'POST' });
            setSecret({ title: `New signing secret of ${rotating.name}`, secret: rotated.secret });
          }}
        >
          <p>Deliveries are signed with the new secret from their next attempt on. A receiver that accepts the old and the new secret for a while loses none; one that knows only the old refuses them.</p>
        </ConfirmDialog>
      ) : null}
      {deleting ? (
        <ConfirmDialog
          title={`Delete webhook ${deleting.name}?`}
          confirmLabel="Delete webhook"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.request(path(deleting), { method: 'DELETE' });
            if (chosen === deleting.id) setChosen(null);
            webhooks.reload();
          }}
        >
          <p>The subscription and its deliveries go; nothing more is sent to {deleting.url}.</p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
