/**
 * The signed-in session, shared by every page: who is signed in, whether auth is on, and the API client that
 * carries the session's CSRF token. Reloaded from `GET /ui/api/session` at start and after signing in or out.
 */
import { type ComponentChildren, createContext } from 'preact';
import { useCallback, useContext, useEffect, useMemo, useState } from 'preact/hooks';
import { type Api, ApiError } from './api';
import { ADMIN_SECTIONS, type AdminSection, NAMESPACE_ADMIN_SECTIONS } from './router';
import type { Session } from './types';

/** What the pages read from the session context. */
export interface SessionState {
  api: Api;
  /** Null while the first `GET /ui/api/session` is under way. */
  session: Session | null;
  /** The error of loading the session, when it failed. */
  error: string | null;
  /** Signs in with a password or a personal access token; rejects with the server's message. */
  signIn(username: string, password: string): Promise<void>;
  signOut(): Promise<void>;
}

/** Whether the session may change things (delete a tag): signed in, or auth off. */
export function canWrite(session: Session | null): boolean {
  return !!session && (!session.auth || session.user !== null);
}

/**
 * Whether the session may use the admin pages: an admin signed in. With auth off nobody is: the admin API still
 * wants an administrator's credentials, and there is no signing in to give them.
 */
export function isAdmin(session: Session | null): boolean {
  return !!session && session.auth && session.admin;
}

/**
 * The namespaces the session administers as a namespace admin (not a global one): signed in, auth on, and an
 * `admin` grant on them. Empty for everybody else, global admins included (isAdmin covers them).
 */
export function adminNamespacesOf(session: Session | null): string[] {
  return !!session && session.auth && !session.admin && session.user !== null ? (session.adminOf ?? []) : [];
}

/**
 * The admin pages a session may use: every one for a global admin, those the admin API opens to namespace admins
 * for a namespace admin, none otherwise. Hiding a page is a convenience: the admin API is the authority.
 */
export function adminSectionsOf(session: Session | null): readonly AdminSection[] {
  if (isAdmin(session)) return ADMIN_SECTIONS;
  return adminNamespacesOf(session).length > 0 ? NAMESPACE_ADMIN_SECTIONS : [];
}

const SessionContext = createContext<SessionState | null>(null);

/** The session of the page being rendered. */
export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error('useSession outside a SessionProvider');
  return state;
}

/** Sends the browser to another site (the provider's logout); a test gives a fake. */
export type Leave = (url: string) => void;

const leaveTo: Leave = (url) => location.assign(url);

/** Loads the session and provides it (and the API client) to everything inside. */
export function SessionProvider({ api, children, leave = leaveTo }: { api: Api; children: ComponentChildren; leave?: Leave }) {
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<string | null>(null);
  const adopt = useCallback(
    (next: Session) => {
      api.setCsrf(next.csrf);
      setSession(next);
    },
    [api],
  );
  useEffect(() => {
    api.json<Session>('/ui/api/session').then(adopt, (err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  }, [api, adopt]);
  const signIn = useCallback(
    async (username: string, password: string) => {
      const body = await api.json<Omit<Session, 'auth'>>('/ui/api/session', { method: 'POST', json: { username, password } });
      adopt({ user: body.user, admin: body.admin, adminOf: body.adminOf ?? [], csrf: body.csrf, auth: true, ...(session?.oidc ? { oidc: true } : {}) });
    },
    [api, adopt, session],
  );
  const signOut = useCallback(async () => {
    try {
      await api.request('/ui/api/session', { method: 'DELETE' });
    } catch (err) {
      // Already signed out (the session expired): the outcome the user asked for.
      if (!(err instanceof ApiError && err.status === 401)) throw err;
    }
    adopt({ user: null, admin: false, adminOf: [], csrf: null, auth: session?.auth ?? true, ...(session?.oidc ? { oidc: true } : {}) });
    // Signed in through the company's provider: end its session too (RP-initiated logout), or the next company
    // sign-in would pass there without a prompt. It sends the browser back to /ui/.
    if (session?.logoutUrl) leave(session.logoutUrl);
  }, [api, adopt, session, leave]);
  const state = useMemo(() => ({ api, session, error, signIn, signOut }), [api, session, error, signIn, signOut]);
  return <SessionContext.Provider value={state}>{children}</SessionContext.Provider>;
}
