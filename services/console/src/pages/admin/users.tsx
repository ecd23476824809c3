/** Users: list, create, disable or enable, delete. */
import { useState } from 'preact/hooks';
import { ConfirmDialog } from '../../components/confirm-dialog';
import { DataTable } from '../../components/data-table';
import { ErrorMessage, LoadStatus } from '../../components/status';
import { useLoad } from '../../components/use-load';
import { formatTime } from '../../format';
import { useSession } from '../../session';

/** A user of `GET /admin/v1/users`. */
export interface User {
  name: string;
  isAdmin: boolean;
  disabled: boolean;
  createdAt: string;
}

/** The users section. */
export function UsersSection() {
  const { api, session } = useSession();
  const users = useLoad((signal) => api.json<{ users: User[] }>('/admin/v1/users', { signal }), []);
  const [form, setForm] = useState({ name: '', password: '', admin: false });
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<User | null>(null);
  const path = (name: string) => `/admin/v1/users/${encodeURIComponent(name)}`;
  const act = async (what: () => Promise<unknown>, done: string) => {
    setError(null);
    try {
      await what();
      setNotice(done);
      users.reload();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  const create = (event: Event) => {
    event.preventDefault();
    void act(async () => {
      await api.request('/admin/v1/users', { method: 'POST', json: form });
      setForm({ name: '', password: '', admin: false });
    }, `Created user ${form.name}.`);
  };
  return (
    <>
      <p role="status" class="notice">
        {notice}
      </p>
      <section aria-labelledby="new-user-heading">
        <h2 id="new-user-heading">New user</h2>
        <form class="form" onSubmit={create}>
          <div class="field">
            <label for="user-name">Name</label>
            <input id="user-name" required value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
          </div>
          <div class="field">
            <label for="user-password">Password (at least 8 characters)</label>
            <input id="user-password" type="password" autocomplete="new-password" minLength={8} required value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} />
          </div>
          <div class="field check">
            <input id="user-admin" type="checkbox" checked={form.admin} onChange={(e) => setForm({ ...form, admin: e.currentTarget.checked })} />
            <label for="user-admin">Administrator</label>
          </div>
          <ErrorMessage error={error} />
          <button type="submit">Create user</button>
        </form>
      </section>
      <section aria-labelledby="users-heading">
        <h2 id="users-heading">Users</h2>
        <LoadStatus state={users} what="the users" />
        {users.data ? (
          <DataTable
            rows={users.data.users}
            rowKey={(u) => u.name}
            columns={[
              { header: 'Name', cell: (u) => u.name },
              { header: 'Role', cell: (u) => (u.isAdmin ? 'administrator' : 'user') },
              { header: 'State', cell: (u) => (u.disabled ? 'disabled' : 'active') },
              { header: 'Created', cell: (u) => formatTime(u.createdAt) },
              {
                header: 'Actions',
                class: 'row-actions',
                cell: (u) =>
                  u.name === session?.user ? null : (
                    <>
                      <button
                        type="button"
                        class="secondary small"
                        onClick={() => act(() => api.request(`${path(u.name)}/${u.disabled ? 'enable' : 'disable'}`, { method: 'POST' }), `${u.disabled ? 'Enabled' : 'Disabled'} ${u.name}.`)}
                      >
                        {u.disabled ? 'Enable' : 'Disable'}
                        <span class="visually-hidden"> {u.name}</span>
                      </button>
                      <button type="button" class="danger small" onClick={() => setDeleting(u)}>
                        Delete<span class="visually-hidden"> {u.name}</span>
                      </button>
                    </>
                  ),
              },
            ]}
          />
        ) : null}
      </section>
      {deleting ? (
        <ConfirmDialog
          title={`Delete user ${deleting.name}?`}
          confirmLabel="Delete user"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.request(path(deleting.name), { method: 'DELETE' });
            setNotice(`Deleted user ${deleting.name}.`);
            users.reload();
          }}
        >
          <p>The user, their grants and their sessions go. A later user of the same name inherits none of them.</p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
