/**
 * Robot accounts: list, create (the secret shown once), revoke. A robot of a namespace is named
 * `<namespace>+<name>` and logs in as `robot$<namespace>+<name>`; a namespace admin creates only those, in a
 * namespace of its (chosen from the session's `adminOf`), and sees only those (the API lists no others).
 */
import { useState } from 'preact/hooks';
import { ConfirmDialog } from '../../components/confirm-dialog';
import { DataTable } from '../../components/data-table';
import { PrincipalName } from '../../components/principal-name';
import { SecretOnce } from '../../components/secret-once';
import { ErrorMessage, LoadStatus } from '../../components/status';
import { useLoad } from '../../components/use-load';
import { formatTime } from '../../format';
import { adminNamespacesOf, isAdmin, useSession } from '../../session';

/** A robot of `GET /admin/v1/robots`. */
export interface Robot {
  name: string;
  login: string;
  expiresAt: string | null;
  revokedAt: string | null;
  createdBy: string | null;
}

/** The robots section. */
export function RobotsSection() {
  const { api, session } = useSession();
  const global = isAdmin(session);
  const mine = adminNamespacesOf(session);
  const robots = useLoad((signal) => api.json<{ robots: Robot[] }>('/admin/v1/robots', { signal }), []);
  const [name, setName] = useState('');
  // A global admin's robot is global unless it names a namespace; a namespace admin's belongs to one of its.
  const [typed, setNamespace] = useState('');
  const namespace = global || mine.includes(typed) ? typed : (mine[0] ?? '');
  const [expiresIn, setExpiresIn] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<{ name: string; login: string; secret: string } | null>(null);
  const [revoking, setRevoking] = useState<Robot | null>(null);
  const create = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      const body = await api.json<{ name: string; login: string; secret: string }>('/admin/v1/robots', { method: 'POST', json: { name, ...(namespace ? { namespace } : {}), ...(expiresIn ? { expiresIn } : {}) } });
      setCreated(body);
      setName('');
      setExpiresIn('');
      robots.reload();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <>
      {created ? <SecretOnce title={`Robot ${created.name} created`} login={created.login} secret={created.secret} onDone={() => setCreated(null)} /> : null}
      <section aria-labelledby="new-robot-heading">
        <h2 id="new-robot-heading">New robot</h2>
        <form class="form" onSubmit={create}>
          <div class="field">
            <label for="robot-name">Name</label>
            <input id="robot-name" required pattern="[a-z0-9][a-z0-9._\-]{0,63}" value={name} onInput={(e) => setName(e.currentTarget.value)} aria-describedby="robot-name-hint" />
            <span class="hint" id="robot-name-hint">
              Lowercase letters, digits, dots, dashes; without a namespace it logs in as robot$name.
            </span>
          </div>
          <div class="field">
            <label for="robot-namespace">{global ? 'Namespace (optional)' : 'Namespace'}</label>
            {global ? (
              <input id="robot-namespace" value={namespace} onInput={(e) => setNamespace(e.currentTarget.value)} aria-describedby="robot-namespace-hint" />
            ) : (
              <select id="robot-namespace" required value={namespace} onChange={(e) => setNamespace(e.currentTarget.value)} aria-describedby="robot-namespace-hint">
                {mine.map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            )}
            <span class="hint" id="robot-namespace-hint">
              A robot of a namespace is named namespace+name and logs in as robot$namespace+name{global ? '; empty for a global robot' : ''}.
            </span>
          </div>
          <div class="field">
            <label for="robot-expires">Expires in (optional)</label>
            <input id="robot-expires" placeholder="720h" value={expiresIn} onInput={(e) => setExpiresIn(e.currentTarget.value)} />
          </div>
          <ErrorMessage error={error} />
          <button type="submit">Create robot</button>
        </form>
      </section>
      <section aria-labelledby="robots-heading">
        <h2 id="robots-heading">Robots</h2>
        <LoadStatus state={robots} what="the robots" />
        {robots.data ? (
          <DataTable
            rows={robots.data.robots}
            rowKey={(r) => r.name}
            empty="No robots yet."
            columns={[
              { header: 'Login', cell: (r) => <code>{r.login}</code> },
              { header: 'Expires', cell: (r) => (r.expiresAt ? formatTime(r.expiresAt) : 'never') },
              { header: 'Created by', cell: (r) => <PrincipalName name={r.createdBy} /> },
              { header: 'State', cell: (r) => (r.revokedAt ? `revoked ${formatTime(r.revokedAt)}` : 'active') },
              {
                header: 'Actions',
                cell: (r) =>
                  r.revokedAt ? null : (
                    <button type="button" class="danger small" onClick={() => setRevoking(r)} aria-label={`Revoke robot ${r.name}`}>
                      Revoke
                    </button>
                  ),
              },
            ]}
          />
        ) : null}
      </section>
      {revoking ? (
        <ConfirmDialog
          title={`Revoke robot ${revoking.name}?`}
          confirmLabel="Revoke robot"
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await api.request(`/admin/v1/robots/${encodeURIComponent(revoking.name)}`, { method: 'DELETE' });
            robots.reload();
          }}
        >
          <p>Clients logging in as {revoking.login} will be refused from now on.</p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
