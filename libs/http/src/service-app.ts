/** The frame every service's express app shares: health endpoints, route matching, the error envelope. */
import express, { Express, Request, RequestHandler, Response } from 'express';
import { OciError, RouteKey, RouteMatch, RouteOwner, matchRoute } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import { createErrorHandler, withJsonFinalHandler } from './error-handler';

/** Checks a service's dependencies; throws when one does not answer. */
export type ReadinessCheck = () => Promise<void>;

/** Creates an express app with the settings every service uses and `/healthz` + `/readyz`. */
export function createServiceApp(ready: ReadinessCheck): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await ready();
      res.json({ status: 'ready' });
    } catch (err) {
      res.status(503).json({ status: 'unavailable', reason: String((err as Error)?.message ?? err) });
    }
  });
  return app;
}

/**
 * Adds the trailing handlers: unknown paths answer NOT_FOUND in the OCI envelope, errors render once, and nothing
 * reaches express's HTML final handler.
 */
export function finishServiceApp(app: Express, logger: Logger): Express {
  app.use((_req, _res, next) => next(new OciError('NOT_FOUND')));
  app.use(createErrorHandler(logger));
  return withJsonFinalHandler(app, logger);
}

/** The route of a request: as the gateway matched it (same process), or matched here from the raw path. */
export function routeOf(req: Request, res: Response): RouteMatch | null {
  const matched = res.locals.route as RouteMatch | undefined;
  return matched ?? matchRoute(req.path);
}

/** Serves one request of a named route. */
export type RouteHandler = (req: Request, res: Response, match: RouteMatch) => Promise<void>;

/**
 * One handler per named route and method, keyed `'<route> <METHOD>'` as the route table allows (see `RouteKey`): a
 * misspelt key does not compile. `Owner` narrows the keys to one service's routes.
 */
export type RouteHandlers<Owner extends RouteOwner = RouteOwner> = Partial<Record<RouteKey<Owner>, RouteHandler>>;

/**
 * An express handler that dispatches the routes this service owns to `handlers`; a HEAD without a handler of its own
 * is served by the route's GET handler. Anything else goes to `next`.
 */
export function dispatchRoutes<Owner extends RouteOwner = RouteOwner>(handlers: RouteHandlers<Owner>): RequestHandler {
  // Looked up by the request's route and method, which the types cannot know in advance.
  const byKey: Partial<Record<string, RouteHandler>> = handlers;
  return async (req, res, next) => {
    const match = routeOf(req, res);
    if (!match) return next();
    const handler = byKey[`${match.route.name} ${req.method}`] ?? (req.method === 'HEAD' ? byKey[`${match.route.name} GET`] : undefined);
    if (!handler) return next();
    await handler(req, res, match);
  };
}

/** A Location header value for an API path: absolute when the registry's external URL is configured. */
export function locationFor(baseUrl: string | undefined, path: string): string {
  return baseUrl ? `${baseUrl.replace(/\/$/, '')}${path}` : path;
}
