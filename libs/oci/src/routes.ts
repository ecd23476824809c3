/**
 * The route table of the Distribution API: one list of named routes, matched against the raw request path
 * (repository names contain `/`, so they are matched by the grammar, not by a framework's path params).
 * The gateway uses it to dispatch; the services use it to handle.
 */
import { OciError } from './errors';
import { assertRepositoryName } from './reference';

/** The service that owns a route. */
export type RouteOwner = 'gateway' | 'blob' | 'manifest' | 'auth';

/** The named routes of the API. */
export type RouteName =
  | 'base'
  | 'catalog'
  | 'tags'
  | 'manifest'
  | 'blob'
  | 'uploadStart'
  | 'upload'
  | 'referrers'
  | 'token'
  | 'jwks'
  | 'admin'
  | 'dockerPing'
  | 'search'
  | 'searchApi'
  | 'session'
  | 'oidcLogin'
  | 'oidcCallback'
  | 'oidcCli'
  | 'consoleRepositories'
  | 'consoleTags'
  | 'events';

/** The HTTP methods a route may accept. */
export type RouteMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One entry of the route table. */
export interface RouteSpec {
  name: RouteName;
  owner: RouteOwner;
  methods: readonly RouteMethod[];
  /** Matches the part of the path after `/v2/<name>/` (or the whole path for routes without a repository). */
  pattern: RegExp;
  hasRepository: boolean;
}

/** The table as written, its literal names and methods kept for `RouteKey`. */
const ROUTE_TABLE = [
  { name: 'base', owner: 'gateway', methods: ['GET', 'HEAD'], pattern: /^\/v2\/?$/, hasRepository: false },
  { name: 'catalog', owner: 'manifest', methods: ['GET', 'HEAD'], pattern: /^\/v2\/_catalog$/, hasRepository: false },
  { name: 'tags', owner: 'manifest', methods: ['GET', 'HEAD'], pattern: /^tags\/list$/, hasRepository: true },
  { name: 'manifest', owner: 'manifest', methods: ['GET', 'HEAD', 'PUT', 'DELETE'], pattern: /^manifests\/([^/]+)$/, hasRepository: true },
  { name: 'uploadStart', owner: 'blob', methods: ['POST'], pattern: /^blobs\/uploads\/?$/, hasRepository: true },
  { name: 'upload', owner: 'blob', methods: ['GET', 'HEAD', 'PATCH', 'PUT', 'DELETE'], pattern: /^blobs\/uploads\/([^/]+)$/, hasRepository: true },
  { name: 'blob', owner: 'blob', methods: ['GET', 'HEAD', 'DELETE'], pattern: /^blobs\/([^/]+)$/, hasRepository: true },
  { name: 'referrers', owner: 'manifest', methods: ['GET', 'HEAD'], pattern: /^referrers\/([^/]+)$/, hasRepository: true },
  // The Docker token service and the admin API live beside the Distribution API, on the same door.
  { name: 'token', owner: 'auth', methods: ['GET', 'POST'], pattern: /^\/token$/, hasRepository: false },
  { name: 'jwks', owner: 'auth', methods: ['GET', 'HEAD'], pattern: /^\/\.well-known\/jwks\.json$/, hasRepository: false },
  { name: 'admin', owner: 'auth', methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], pattern: /^\/admin\/v1(?:\/.*)?$/, hasRepository: false },
  // Search: Docker's v1 search (what `docker search <registry>/<term>` calls, after pinging /v1/_ping) and the
  // richer JSON search of the console's API, whose routes all live under /api/v1. The manifest service owns the
  // repositories and tags they search.
  { name: 'dockerPing', owner: 'gateway', methods: ['GET', 'HEAD'], pattern: /^\/v1\/_ping$/, hasRepository: false },
  { name: 'search', owner: 'manifest', methods: ['GET', 'HEAD'], pattern: /^\/v1\/search$/, hasRepository: false },
  { name: 'searchApi', owner: 'manifest', methods: ['GET', 'HEAD'], pattern: /^\/api\/v1\/search$/, hasRepository: false },
  // The web console's own API: its session (signed in with the token service's credentials, owned by the auth
  // service), the repositories and tags a caller may pull, and the live feed of events (the manifest service's).
  { name: 'session', owner: 'auth', methods: ['GET', 'POST', 'DELETE'], pattern: /^\/ui\/api\/session$/, hasRepository: false },
  // Company sign-in (OpenID Connect, code with PKCE): the redirect to the provider and its way back.
  { name: 'oidcLogin', owner: 'auth', methods: ['GET'], pattern: /^\/ui\/api\/oidc\/login$/, hasRepository: false },
  { name: 'oidcCallback', owner: 'auth', methods: ['GET'], pattern: /^\/ui\/api\/oidc\/callback$/, hasRepository: false },
  // What `lading-admin login` needs to run the device grant against the provider (issuer, public client id).
  { name: 'oidcCli', owner: 'auth', methods: ['GET'], pattern: /^\/ui\/api\/oidc\/cli$/, hasRepository: false },
  { name: 'consoleRepositories', owner: 'manifest', methods: ['GET', 'HEAD'], pattern: /^\/api\/v1\/repositories$/, hasRepository: false },
  // The repository is captured here rather than after `/v2/`: `matchRoute` checks it against the grammar.
  { name: 'consoleTags', owner: 'manifest', methods: ['GET', 'HEAD'], pattern: /^\/api\/v1\/repositories\/(.+)\/tags$/, hasRepository: false },
  { name: 'events', owner: 'manifest', methods: ['GET'], pattern: /^\/api\/v1\/events$/, hasRepository: false },
] as const satisfies readonly RouteSpec[];

/**
 * Where the manifest service takes repository deletions from the admin API of the distributed mode (the auth service,
 * on an admin's behalf, with the admin call's proof): `DELETE <path>/<name>[?force=true]`. Not in the route table:
 * the gateway never routes a client here.
 */
export const INTERNAL_REPOSITORY_ADMIN_PATH = '/internal/v1/repositories';

/**
 * Where the gc service takes the collector's admin calls from the admin API of the distributed mode (the auth
 * service, on an admin's behalf, with the admin call's proof): `GET <path>/status`, `GET <path>/dry-run`,
 * `POST <path>/collect`, what `/admin/v1/gc/...` answers. Not in the route table: the gateway routes `/admin/v1/gc`
 * to the admin API like every admin path, and never a client here.
 */
export const INTERNAL_GC_ADMIN_PATH = '/internal/v1/gc';

/** The route table: order matters only between `uploadStart`/`upload` and `blob`. */
export const ROUTES: readonly RouteSpec[] = ROUTE_TABLE;

type TableEntry = (typeof ROUTE_TABLE)[number];

/**
 * A route and one method the table lets it take, as handlers are keyed (`'manifest PUT'`): a misspelt route, or a
 * method its route does not take, is a compile error instead of a silent 404. `Owner` narrows it to one service's
 * routes.
 */
export type RouteKey<Owner extends RouteOwner = RouteOwner> = TableEntry extends infer E
  ? E extends { name: infer N extends string; owner: Owner; methods: readonly (infer M extends string)[] }
    ? `${N} ${M}`
    : never
  : never;

/** A request path matched against the route table. */
export interface RouteMatch {
  route: RouteSpec;
  /** The repository name, for routes that have one. */
  repository: string;
  /** The route's single parameter: the reference, digest or upload id. */
  param: string;
}

const REPOSITORY_ROUTE = /^\/v2\/(.+?)\/(tags\/list|manifests\/[^/]+|blobs\/uploads\/?[^/]*|blobs\/[^/]+|referrers\/[^/]+)$/;

/**
 * Matches a raw (still percent-encoded) request path. Returns null for paths outside the API; throws
 * NAME_INVALID when the path has the shape of a route but the repository name breaks the grammar.
 */
export function matchRoute(path: string): RouteMatch | null {
  for (const route of ROUTES) {
    if (route.hasRepository) continue;
    const m = route.pattern.exec(path);
    if (!m) continue;
    // A route outside /v2/ that names a repository (the console's tags) captures it as its one group.
    if (m[1] !== undefined) assertRepositoryName(m[1]);
    return { route, repository: m[1] ?? '', param: '' };
  }
  const m = REPOSITORY_ROUTE.exec(path);
  if (!m) return null;
  const [, repository, rest] = m;
  for (const route of ROUTES) {
    if (!route.hasRepository) continue;
    const pm = route.pattern.exec(rest);
    if (!pm) continue;
    assertRepositoryName(repository);
    return { route, repository, param: pm[1] ?? '' };
  }
  return null;
}

/** Throws UNSUPPORTED (405) unless the route accepts the method. */
export function assertMethodAllowed(match: RouteMatch, method: string): void {
  if (!(match.route.methods as readonly string[]).includes(method)) {
    throw new OciError('UNSUPPORTED', `method ${method} is not allowed on this endpoint`, undefined, {
      headers: { Allow: match.route.methods.join(', ') },
    });
  }
}
