/**
 * Namespaces (public or not), the grants on them and their immutable-tag rules (tag-rules.tsx): list, create,
 * delete, grant, remove a grant, add and remove tag rules. A namespace admin sees its namespaces only (the API lists
 * no others) and may grant, remove grants and change tag rules on them, but creating and deleting namespaces is for
 * global admins: those forms are not shown to it.
 */
import { useState } from 'preact/hooks';
import { ConfirmDialog } from '../../components/confirm-dialog';
import { DataTable } from '../../components/data-table';
import { ErrorMessage, LoadStatus } from '../../components/status';
import { useLoad } from '../../components/use-load';
import { isAdmin, useSession } from '../../session';
import { TagRules } from './tag-rules';

/** The roles a grant may give (services/auth admin API). */
export const ROLES = ['pull', 'push', 'delete', 'admin'] as const;

/** A namespace of `GET /admin/v1/namespaces`. */
export interface Namespace {
  prefix: string;
  public: boolean;
  grants: Array<{ principalType: string; principalName: string; role: string }>;
  /** Tag globs that may not move or be deleted once pushed, and the exceptions to them. */
  immutableTags?: string[];
  immutableTagExceptions?: string[];
}

/**
 * What the grant form accepts as its principal, as the admin API does (`GRANT_PRINCIPAL` in
 * services/auth/src/admin-api.ts): a user, a robot (global, or a namespace's `<namespace>+<name>`), or an identity
 * provider's group. Written for the `pattern` attribute, which browsers compile with the `v` flag.
 */
export const GRANT_PRINCIPAL_PATTERN =
  'user:[a-z0-9][a-z0-9._\\-]{0,63}|robot:([a-z0-9][a-z0-9._\\/\\-]{0,254}\\+)?[a-z0-9][a-z0-9._\\-]{0,63}|group:[A-Za-z0-9][A-Za-z0-9 ._@\\-]{0,127}';

/** The principal of a grant as the admin API names it: `user:alice`, `robot:ci` (a robot without its `robot$`). */
export function principalOf(grant: Namespace['grants'][number]): string {
  return `${grant.principalType}:${grant.principalName.replace(/^robot\$/, '')}`;
}

/** The namespaces section. */
export function NamespacesSection() {
  const { api, session } = useSession();
  const global = isAdmin(session);
  const namespaces = useLoad((signal) => api.json<{ namespaces: Namespace[] }>('/admin/v1/namespaces', { signal }), []);
  const [prefix, setPrefix] = useState('');
  const [isPublic, setIsPublic] = useState(false);
  const [grant, setGrant] = useState({ prefix: '', principal: '', role: 'pull' });
  const [error, setError] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const run = async (what: () => Promise<unknown>) => {
    setError(null);
    try {
      await what();
      namespaces.reload();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  const list = namespaces.data?.namespaces ?? [];
  return (
    <>
      <ErrorMessage error={error} />
      {global ? (
        <section aria-labelledby="new-namespace-heading">
          <h2 id="new-namespace-heading">New namespace</h2>
          <form
            class="form"
            onSubmit={(e) => {
              e.preventDefault();
              void run(async () => {
                await api.request('/admin/v1/namespaces', { method: 'POST', json: { prefix, public: isPublic } });
                setPrefix('');
              });
            }}
          >
            <div class="field">
              <label for="namespace-prefix">Prefix</label>
              <input id="namespace-prefix" required value={prefix} onInput={(e) => setPrefix(e.currentTarget.value)} />
            </div>
            <div class="field check">
              <input id="namespace-public" type="checkbox" checked={isPublic} onChange={(e) => setIsPublic(e.currentTarget.checked)} />
              <label for="namespace-public">Public: anyone may pull</label>
            </div>
            <button type="submit">Create or update namespace</button>
          </form>
        </section>
      ) : null}
      <section aria-labelledby="grant-heading">
        <h2 id="grant-heading">Grant a role</h2>
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            void run(() => api.request('/admin/v1/grants', { method: 'POST', json: grant }));
          }}
        >
          <div class="field">
            <label for="grant-prefix">Namespace</label>
            <select id="grant-prefix" required value={grant.prefix} onChange={(e) => setGrant({ ...grant, prefix: e.currentTarget.value })}>
              <option value="">Choose a namespace</option>
              {list.map((n) => (
                <option key={n.prefix} value={n.prefix}>
                  {n.prefix}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="grant-principal">Principal</label>
            <input
              id="grant-principal"
              required
              placeholder="user:alice, robot:team+ci or group:platform"
              pattern={GRANT_PRINCIPAL_PATTERN}
              value={grant.principal}
              onInput={(e) => setGrant({ ...grant, principal: e.currentTarget.value })}
            />
          </div>
          <div class="field">
            <label for="grant-role">Role</label>
            <select id="grant-role" value={grant.role} onChange={(e) => setGrant({ ...grant, role: e.currentTarget.value })}>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </div>
          <button type="submit">Grant</button>
        </form>
      </section>
      <section aria-labelledby="namespaces-heading">
        <h2 id="namespaces-heading">Namespaces</h2>
        <LoadStatus state={namespaces} what="the namespaces" />
        {namespaces.data && list.length === 0 ? <p>{global ? 'No namespaces yet: only administrators can reach any repository.' : 'None of your namespaces is left.'}</p> : null}
        <ul class="cards">
          {list.map((n) => (
            <li key={n.prefix} class="card">
              <h3>
                {n.prefix} <span class="badge">{n.public ? 'public' : 'private'}</span>
              </h3>
              <DataTable
                label={`Grants on ${n.prefix}`}
                rows={n.grants}
                rowKey={(g) => `${principalOf(g)}-${g.role}`}
                empty={<span class="meta">No grants.</span>}
                columns={[
                  { header: 'Principal', cell: (g) => <code>{principalOf(g)}</code> },
                  { header: 'Role', cell: (g) => g.role },
                  {
                    header: 'Actions',
                    cell: (g) => (
                      <button
                        type="button"
                        class="secondary small"
                        onClick={() => run(() => api.request('/admin/v1/grants', { method: 'DELETE', json: { prefix: n.prefix, principal: principalOf(g), role: g.role } }))}
                      >
                        Remove<span class="visually-hidden"> the {g.role} grant of {principalOf(g)}</span>
                      </button>
                    ),
                  },
                ]}
              />
              <TagRules namespace={n} onChanged={namespaces.reload} />
              {global ? (
                <button type="button" class="danger small" onClick={() => setDeleting(n.prefix)}>
                  Delete namespace<span class="visually-hidden"> {n.prefix}</span>
                </button>
              ) : null}
            </li>
          ))}
        </ul>
      </section>
      {deleting ? (
        <ConfirmDialog
          title={`Delete namespace ${deleting}?`}
          confirmLabel="Delete namespace"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.request(`/admin/v1/namespaces?prefix=${encodeURIComponent(deleting)}`, { method: 'DELETE' });
            namespaces.reload();
          }}
        >
          <p>The namespace and its grants go; who may reach its repositories changes at once.</p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
