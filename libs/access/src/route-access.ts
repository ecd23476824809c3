/**
 * Which access each route of the API needs: the one table the gateway enforces, built on the route table.
 * Deleting is its own action on every delete route; pushing includes opening and writing upload sessions.
 */
import type { RouteMatch } from '@lading/oci';
import type { Access } from './scopes';

/**
 * The access a request needs; an empty list means any caller with a valid token. The auth service's own routes
 * (token, JWKS, admin) are not enforced by the gateway: the auth service authenticates those itself.
 */
export function requiredAccess(match: RouteMatch, method: string): Access[] {
  const repo = (actions: string[]): Access[] => [{ type: 'repository', name: match.repository, actions }];
  const read = method === 'GET' || method === 'HEAD';
  switch (match.route.name) {
    case 'base':
      return [];
    case 'catalog':
      return [{ type: 'registry', name: 'catalog', actions: ['*'] }];
    case 'tags':
    case 'referrers':
      return repo(['pull']);
    case 'manifest':
    case 'blob':
      if (read) return repo(['pull']);
      if (method === 'DELETE') return repo(['delete']);
      return repo(['push']);
    case 'uploadStart':
    case 'upload':
      return repo(['push']);
    case 'token':
    case 'jwks':
    case 'admin':
      return [];
    case 'dockerPing':
    case 'search':
    case 'searchApi':
    case 'consoleRepositories':
    case 'consoleTags':
    case 'events':
      // Each lists only what its caller may pull (the manifest service checks in its queries).
      return [];
    case 'session':
    case 'oidcLogin':
    case 'oidcCallback':
    case 'oidcCli':
      return [];
  }
}

/**
 * Whether a route answers callers without a token, as anonymous (when auth is on, every other route needs one):
 * Docker's ping before a search, and the searches, which list only what their caller may pull (anonymous: the public
 * namespaces), and the console's repositories, tags and live feed, filtered the same way. `docker search` sends no credentials to a registry other than Docker Hub; a token, when sent, is
 * still verified and its subject is the caller.
 */
export function acceptsAnonymous(match: RouteMatch): boolean {
  return ANONYMOUS_ROUTES.has(match.route.name);
}

/** The routes `acceptsAnonymous` lets through: those that answer each caller with only what it may pull. */
const ANONYMOUS_ROUTES = new Set<RouteMatch['route']['name']>(['dockerPing', 'search', 'searchApi', 'consoleRepositories', 'consoleTags', 'events']);
