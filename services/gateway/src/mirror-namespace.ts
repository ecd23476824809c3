/**
 * The `mirror` setting, served: Docker's `registry-mirrors` and containerd's hosts.toml mirrors ask for Docker Hub's
 * names without a prefix (`/v2/library/alpine/manifests/3.20`), and such a pull is answered as
 * `<mirror.namespace>/library/alpine`, through that namespace's pull-through cache.
 *
 * The rule (zot's on-demand sync works the same way: local storage first, the upstream on a miss):
 * - Only pulls are rewritten: GET and HEAD of manifests, blobs and tag lists. Pushes, deletes and uploads always
 *   address the name as written, so un-prefixed names keep working as ordinary local repositories.
 * - A name that is a local repository (something was pushed to it) is served locally, never from the mirror: what
 *   an operator pushed wins over what the upstream has, and a local image is never shadowed.
 * - A name inside a proxy namespace, or one whose first segment is the mirror namespace, is left alone.
 * - The upstream is the mirror namespace's, fixed by configuration: the request chooses nothing (containerd's `ns`
 *   query parameter is ignored). Authorization is checked on the rewritten name, so pulling through the mirror
 *   needs `pull` on `<mirror.namespace>/...` like pulling through the namespace directly.
 */
import type { LadingConfig } from '@lading/config';
import { type HttpApp, pathOf, withFront } from '@lading/http';
import { type RouteMatch, matchRoute } from '@lading/oci';

/** What the mirror rewrite needs to know. */
export interface MirrorNamespaceDeps {
  /** The namespace un-prefixed pulls are answered from (a proxy rule's, config or stored). */
  namespace: string;
  /** Whether `namespace` names a proxy rule now (a stored one may come and go); nothing is rewritten while it does not. */
  isActive(): boolean;
  /** Whether a repository is inside a proxy namespace (`hub/...`); such names are never rewritten. */
  isProxied(repository: string): boolean;
  /** Whether a repository exists locally (something was pushed to it): such names are served as they are. */
  isLocal(repository: string): Promise<boolean>;
}

/** The routes a pull reads; only these are ever rewritten. */
const PULL_ROUTES = new Set(['manifest', 'blob', 'tags']);

/**
 * The path a pull of `match` should be served from: `/v2/<namespace>/<repository>/...` when the mirror answers it,
 * null when the request is served as written.
 */
export async function mirrorPath(deps: MirrorNamespaceDeps, method: string | undefined, path: string, match: RouteMatch | null): Promise<string | null> {
  if (method !== 'GET' && method !== 'HEAD') return null;
  if (!deps.isActive()) return null;
  if (!match || !PULL_ROUTES.has(match.route.name)) return null;
  const { repository } = match;
  if (deps.isProxied(repository) || repository === deps.namespace || repository.startsWith(`${deps.namespace}/`)) return null;
  if (await deps.isLocal(repository)) return null;
  return `/v2/${deps.namespace}/${path.slice('/v2/'.length)}`;
}

/**
 * `app` answering un-prefixed pulls from the mirror namespace (see the rule above): the request's URL is rewritten
 * before the app (and so the gateway's authorization) sees it; everything else passes through untouched.
 */
export function withMirrorNamespace(app: HttpApp, deps: MirrorNamespaceDeps): HttpApp {
  return withFront(app, (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = pathOf(req.url);
    let match: RouteMatch | null;
    try {
      match = matchRoute(path);
    } catch {
      // A bad name: the app answers it (NAME_INVALID) as it would without the mirror.
      return false;
    }
    if (!match || !PULL_ROUTES.has(match.route.name)) return false;
    mirrorPath(deps, req.method, path, match).then(
      (rewritten) => {
        if (rewritten !== null) req.url = `${rewritten}${(req.url ?? '').slice(path.length)}`;
        app(req, res, next);
      },
      // The lookup failed (the database is unreachable): served as written, where it fails or not as it would anyway.
      () => app(req, res, next),
    );
    return true;
  });
}

/**
 * `app` with the configured mirror (`mirror.namespace`) in front, or `app` itself when none is set: how the embedded
 * registry and the distributed gateway both wire it (each with its own way of telling a local name).
 */
export function withConfiguredMirror(app: HttpApp, config: Pick<LadingConfig, 'mirror'>, deps: Omit<MirrorNamespaceDeps, 'namespace'>): HttpApp {
  const namespace = config.mirror.namespace;
  return namespace === undefined ? app : withMirrorNamespace(app, { namespace, ...deps });
}
