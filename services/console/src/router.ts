/**
 * The console's routes: history URLs under `/ui/` (the server answers every unknown `/ui/` path with index.html).
 * A repository name holds slashes, so what follows it is set off by a `-` component, which no repository name can
 * contain (each component starts with a letter or digit): `/ui/repositories/team/app/-/manifests/v1`.
 */
import { useEffect, useState } from 'preact/hooks';

/** Where the app is mounted (vite.config.ts `base`). */
export const BASE = '/ui/';

/** The admin pages, by path segment. */
export const ADMIN_SECTIONS = ['users', 'robots', 'tokens', 'namespaces', 'webhooks', 'outbox', 'collector', 'audit'] as const;

/**
 * The admin pages a namespace admin may use (the routes services/auth admin-authorization.ts opens to it): the
 * grants of its namespaces, their robots, their webhooks, their audit. The first is where its Admin link leads.
 */
export const NAMESPACE_ADMIN_SECTIONS = ['namespaces', 'robots', 'webhooks', 'audit'] as const satisfies readonly AdminSection[];

/** One admin page. */
export type AdminSection = (typeof ADMIN_SECTIONS)[number];

/** A parsed location: which page, and what it shows. */
export type Route =
  | { page: 'home'; query: URLSearchParams }
  | { page: 'sign-in'; next: string | null; refused: string | null }
  | { page: 'repository'; name: string }
  | { page: 'image'; name: string; reference: string }
  | { page: 'blob'; name: string; digest: string; mediaType: string | null }
  | { page: 'feed' }
  | { page: 'insights' }
  /** `query`: what the section shows (the audit log's filters); a change of it is no new page (see `pageKey`). */
  | { page: 'admin'; section: AdminSection; query: URLSearchParams }
  | { page: 'not-found'; path: string };

const decode = (text: string) => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

/** Parses a path and query string (as in `location`) into a route. */
export function parseRoute(pathname: string, search = ''): Route {
  const query = new URLSearchParams(search);
  if (!pathname.startsWith(BASE)) return pathname === BASE.slice(0, -1) ? { page: 'home', query } : { page: 'not-found', path: pathname };
  const rest = pathname.slice(BASE.length).replace(/\/+$/, '');
  if (rest === '') return { page: 'home', query };
  if (rest === 'sign-in') return { page: 'sign-in', next: query.get('next'), refused: query.get('refused') };
  if (rest === 'feed') return { page: 'feed' };
  if (rest === 'insights') return { page: 'insights' };
  const parts = rest.split('/').map(decode);
  if (parts[0] === 'admin' && parts.length === 2 && (ADMIN_SECTIONS as readonly string[]).includes(parts[1])) return { page: 'admin', section: parts[1] as AdminSection, query };
  if (parts[0] === 'repositories' && parts.length >= 2) {
    const dash = parts.indexOf('-');
    if (dash < 0) return { page: 'repository', name: parts.slice(1).join('/') };
    const name = parts.slice(1, dash).join('/');
    const [kind, ...ref] = parts.slice(dash + 1);
    if (name && ref.length === 1 && kind === 'manifests') return { page: 'image', name, reference: ref[0] };
    if (name && ref.length === 1 && kind === 'blobs') return { page: 'blob', name, digest: ref[0], mediaType: query.get('mediaType') };
  }
  return { page: 'not-found', path: pathname };
}

const encodeName = (name: string) => name.split('/').map(encodeURIComponent).join('/');

/** The console's links, one function per page. */
export const href = {
  home: (query?: URLSearchParams) => `${BASE}${query?.toString() ? `?${query.toString()}` : ''}`,
  /** Company sign-in: the server redirects to the OpenID Provider and back to /ui/. */
  oidcSignIn: () => `${BASE}api/oidc/login`,
  signIn: (next?: string) => `${BASE}sign-in${next ? `?next=${encodeURIComponent(next)}` : ''}`,
  repository: (name: string) => `${BASE}repositories/${encodeName(name)}`,
  image: (name: string, reference: string) => `${BASE}repositories/${encodeName(name)}/-/manifests/${encodeURIComponent(reference)}`,
  blob: (name: string, digest: string, mediaType?: string) =>
    `${BASE}repositories/${encodeName(name)}/-/blobs/${encodeURIComponent(digest)}${mediaType ? `?mediaType=${encodeURIComponent(mediaType)}` : ''}`,
  feed: () => `${BASE}feed`,
  insights: () => `${BASE}insights`,
  /** `search`: a query string (`?…`) of what the section shows, as the section makes it. */
  admin: (section: AdminSection, search = '') => `${BASE}admin/${section}${search}`,
};

/**
 * What tells one page from another: a change of it is a new page (mounted afresh, focus on its heading); a change
 * of the rest (an admin section's query: its filters) is the same page showing something else.
 */
export function pageKey(route: Route): string {
  const page = route.page === 'admin' ? { page: route.page, section: route.section } : route;
  return JSON.stringify(page, (_key, value: unknown) => (value instanceof URLSearchParams ? value.toString() : value));
}

const NAVIGATE = 'lading:navigate';

/** Goes to a console URL without reloading (history.pushState), or replaces the current entry. */
export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new Event(NAVIGATE));
}

/** The current route, updated on navigate() and on the browser's back and forward. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname, location.search));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.pathname, location.search));
    window.addEventListener('popstate', update);
    window.addEventListener(NAVIGATE, update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener(NAVIGATE, update);
    };
  }, []);
  return route;
}

/**
 * Handles a click on a console link in the page (navigate without reloading); a click with a modifier key, another
 * button, or on a link out of the console is left to the browser.
 */
export function interceptLinkClick(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = (event.target as Element | null)?.closest?.('a');
  if (!anchor || anchor.target || anchor.hasAttribute('download')) return;
  const url = new URL(anchor.href, location.href);
  // The server's own routes under /ui/api/ (company sign-in's redirect to the provider) are real navigations.
  if (url.origin !== location.origin || !url.pathname.startsWith(BASE) || url.pathname.startsWith(`${BASE}api/`)) return;
  // A link within the page (the skip link's #main) is the browser's to follow.
  if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}
