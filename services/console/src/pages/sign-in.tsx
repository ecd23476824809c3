/** Signing in with a username and a password or personal access token. */
import { useState } from 'preact/hooks';
import { PageHeading } from '../components/page-heading';
import { ErrorMessage } from '../components/status';
import { BASE, href, navigate } from '../router';
import { useSession } from '../session';

/**
 * Why a company sign-in came back refused (`?refused=` of the registry's callback), in words. Only these are shown:
 * a link can name a reason, never put its own text on the page.
 */
const REFUSALS: Record<string, string> = {
  'not-allowed': 'Your company account may not sign in to this registry: it is in none of the groups allowed here, or its e-mail address is not in a domain allowed here. Ask an administrator of the registry for access.',
  disabled: 'Your account on this registry is disabled. Ask an administrator of the registry.',
  username: 'Your company account has no user name this registry can use. Ask an administrator of the registry.',
  'name-taken': 'The user name of your company account belongs to another account on this registry. Ask an administrator of the registry to resolve it.',
  failed: 'The company sign-in did not complete. Start it again.',
  unavailable: 'The company sign-in cannot be reached right now. Try again later.',
};

/** The sign-in form; after signing in it goes to `next` (a console path) or home. `refused` names why a company sign-in was refused. */
export function SignInPage({ next, refused = null }: { next: string | null; refused?: string | null }) {
  const { session, signIn } = useSession();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (session && !session.auth) {
    return (
      <>
        <PageHeading>Sign in</PageHeading>
        <p>Authentication is off on this registry: everyone may browse and change everything without signing in.</p>
      </>
    );
  }
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username, password);
      navigate(next && next.startsWith(BASE) && !next.startsWith(href.signIn()) ? next : href.home(), { replace: true });
    } catch (err) {
      setError(err instanceof Error && 'status' in err && err.status === 401 ? 'The username or the password is wrong.' : err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };
  return (
    <>
      <PageHeading>Sign in</PageHeading>
      {session?.user ? <p>You are signed in as {session.user}. Signing in again replaces that session.</p> : null}
      {refused ? <ErrorMessage error={`Company sign-in refused. ${REFUSALS[refused] ?? REFUSALS.failed}`} /> : null}
      {session?.oidc ? (
        <>
          <p>
            <a class="button" href={href.oidcSignIn()}>
              Sign in with your company account
            </a>
          </p>
          <h2>Or with a Lading password or access token</h2>
        </>
      ) : null}
      <form class="form narrow" onSubmit={submit}>
        <label for="username">Username</label>
        <input id="username" name="username" autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        <label for="password">Password or personal access token</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <ErrorMessage error={error} />
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </>
  );
}
