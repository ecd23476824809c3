/** Personal access tokens of a user (the signed-in admin's own by default): list, create (shown once), revoke. */
import { useState } from 'preact/hooks';
import { DataTable } from '../../components/data-table';
import { SecretOnce } from '../../components/secret-once';
import { ErrorMessage, LoadStatus } from '../../components/status';
import { useLoad } from '../../components/use-load';
import { formatTime } from '../../format';
import { useSession } from '../../session';

/** A token of `GET /admin/v1/users/<name>/tokens`. */
export interface AccessToken {
  name: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

/** The tokens section. */
export function TokensSection() {
  const { api, session } = useSession();
  // The signed-in admin's own tokens until another user is asked for (the session may still be loading).
  const [typed, setTyped] = useState<string | null>(null);
  const [chosen, setChosen] = useState<string | null>(null);
  const user = typed ?? session?.user ?? '';
  const shownUser = chosen ?? session?.user ?? '';
  const [name, setName] = useState('');
  const [expiresIn, setExpiresIn] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);
  const base = `/admin/v1/users/${encodeURIComponent(shownUser)}/tokens`;
  const tokens = useLoad(async (signal) => (shownUser ? api.json<{ tokens: AccessToken[] }>(base, { signal }) : { tokens: [] }), [base]);
  const run = async (what: () => Promise<void>) => {
    setError(null);
    try {
      await what();
      tokens.reload();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <>
      <form
        class="form inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          setChosen(user.trim());
        }}
      >
        <div class="field">
          <label for="tokens-user">User</label>
          <input id="tokens-user" required value={user} onInput={(e) => setTyped(e.currentTarget.value)} />
        </div>
        <button type="submit" class="secondary">
          Show tokens
        </button>
      </form>
      {created ? <SecretOnce title={`Token ${created.name} created for ${shownUser}`} login={shownUser} secret={created.token} onDone={() => setCreated(null)} /> : null}
      {shownUser ? (
        <>
          <section aria-labelledby="new-token-heading">
            <h2 id="new-token-heading">New token for {shownUser}</h2>
            <form
              class="form"
              onSubmit={(e) => {
                e.preventDefault();
                void run(async () => {
                  setCreated(await api.json<{ name: string; token: string }>(base, { method: 'POST', json: { name, ...(expiresIn ? { expiresIn } : {}) } }));
                  setName('');
                  setExpiresIn('');
                });
              }}
            >
              <div class="field">
                <label for="token-name">Name</label>
                <input id="token-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
              </div>
              <div class="field">
                <label for="token-expires">Expires in (optional)</label>
                <input id="token-expires" placeholder="720h" value={expiresIn} onInput={(e) => setExpiresIn(e.currentTarget.value)} />
              </div>
              <ErrorMessage error={error} />
              <button type="submit">Create token</button>
            </form>
          </section>
          <section aria-labelledby="tokens-heading">
            <h2 id="tokens-heading">Tokens of {shownUser}</h2>
            <LoadStatus state={tokens} what="the tokens" />
            {tokens.data ? (
              <DataTable
                rows={tokens.data.tokens}
                rowKey={(t) => t.name}
                empty="No tokens."
                columns={[
                  { header: 'Name', cell: (t) => t.name },
                  { header: 'Expires', cell: (t) => formatTime(t.expiresAt) },
                  { header: 'State', cell: (t) => (t.revokedAt ? `revoked ${formatTime(t.revokedAt)}` : 'active') },
                  {
                    header: 'Actions',
                    cell: (t) =>
                      t.revokedAt ? null : (
                        <button type="button" class="danger small" onClick={() => run(async () => void (await api.request(`${base}/${encodeURIComponent(t.name)}`, { method: 'DELETE' })))}>
                          Revoke<span class="visually-hidden"> token {t.name}</span>
                        </button>
                      ),
                  },
                ]}
              />
            ) : null}
          </section>
        </>
      ) : null}
    </>
  );
}
