/**
 * The pull fast path: GET and HEAD of the routes pulls hammer (manifests, blobs) answered on node's bare request
 * and response, in front of express. Express stays for everything else; a request the fast path does not take goes
 * to express untouched. Handlers on the fast path see a plain `IncomingMessage`/`ServerResponse` (express's
 * prototypes are never applied to them) and may read `res.locals.route` when the gateway already matched the route.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RouteMatch, RouteName, matchRoute } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import { answerError } from './error-handler';
import { type HttpApp, withFront } from './http-app';
import type { DispatchLocals } from './dispatch-locals';

/**
 * Serves one matched request on bare node objects; throws or rejects with what the error handler renders. An answer
 * ready at once (a cache hit) is given synchronously, without a promise.
 */
export type RawRouteHandler = (req: IncomingMessage, res: ServerResponse, match: RouteMatch) => void | Promise<void>;

/** A handler in express's shape that also works on bare node objects (`next(err)` renders an error). */
export type RawHandler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** The path of a raw request URL (without its query). */
export function pathOf(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** The route of a GET/HEAD request when it is one of `names`; null otherwise (bad names fall through to express). */
export function matchReadRoute(req: IncomingMessage, res: ServerResponse, names: readonly RouteName[]): RouteMatch | null {
  if (req.method !== 'GET' && req.method !== 'HEAD') return null;
  let match = (res as ServerResponse & { locals?: DispatchLocals }).locals?.route ?? null;
  if (!match) {
    try {
      match = matchRoute(pathOf(req.url));
    } catch {
      // Express answers it (NAME_INVALID) on the ordinary path.
      return null;
    }
  }
  return match && names.includes(match.route.name) ? match : null;
}

/**
 * Serves GET/HEAD of the named routes with `serve` on the fast path, in front of `app`. Errors go to the caller's
 * `next` when the app is mounted (the gateway renders them), else they are rendered here exactly as the express
 * path would.
 */
export function withFastReads(app: HttpApp, names: readonly RouteName[], serve: RawRouteHandler, logger: Logger): HttpApp {
  const fail = (req: IncomingMessage, res: ServerResponse, next: ((err?: unknown) => void) | undefined, err: unknown) => (next ? next(err) : answerError(req, res, err, logger));
  return withFront(app, (req, res, next) => {
    const match = matchReadRoute(req, res, names);
    if (!match) return false;
    try {
      serve(req, res, match)?.catch((err: unknown) => fail(req, res, next, err));
    } catch (err) {
      fail(req, res, next, err);
    }
    return true;
  });
}
