/**
 * The gateway: the registry's only public door. It owns dispatch over the route table (one table, matched against
 * the raw path), sets the headers every response carries, and hands each route to the service that owns it —
 * a router in the same process (embedded) or a proxy to a service's replicas (distributed).
 */
import { randomUUID } from 'node:crypto';
import express, { Express, RequestHandler } from 'express';
import { createErrorHandler, REQUEST_ID_HEADER } from '@lading/http';
import { OciError, RouteOwner, assertMethodAllowed, matchRoute } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import { Authorize, PRINCIPAL_HEADER } from './authorization';

/** The header every response carries, as Docker clients expect. */
export const API_VERSION_HEADER = { name: 'Docker-Distribution-API-Version', value: 'registry/2.0' } as const;

/** How the gateway reaches each service that owns routes. */
export type ServiceDispatch = Record<Exclude<RouteOwner, 'gateway'>, RequestHandler>;

/** What the gateway is built from. */
export interface GatewayDeps {
  dispatch: ServiceDispatch;
  logger: Logger;
  /** Whether to log one line per request. */
  accessLog?: boolean;
  /** Checks that the services behind the gateway answer (for `/readyz`); always ready when omitted (embedded). */
  ready?: () => Promise<void>;
  /** Token enforcement; every request is allowed when omitted (auth off). */
  authorize?: Authorize;
}

/** Creates the gateway's express app. */
export function createGateway(deps: GatewayDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    res.setHeader(API_VERSION_HEADER.name, API_VERSION_HEADER.value);
    // Only the gateway says who the caller is.
    delete req.headers[PRINCIPAL_HEADER];
    const requestId = (req.headers[REQUEST_ID_HEADER] as string | undefined)?.slice(0, 128) || randomUUID();
    req.headers[REQUEST_ID_HEADER] = requestId;
    res.setHeader('X-Request-Id', requestId);
    if (deps.accessLog) {
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        deps.logger.info(
          { method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6, requestId },
          'request',
        );
      });
    }
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.ready?.();
      res.json({ status: 'ready' });
    } catch (err) {
      res.status(503).json({ status: 'unavailable', reason: String((err as Error)?.message ?? err) });
    }
  });

  app.use(async (req, res, next) => {
    const match = matchRoute(req.path);
    if (!match) {
      throw new OciError('NOT_FOUND', undefined, { path: req.path.slice(0, 300) });
    }
    assertMethodAllowed(match, req.method);
    if (deps.authorize && match.route.owner !== 'auth') await deps.authorize(req, res, match);
    if (match.route.owner === 'gateway') {
      res.status(200).setHeader('Content-Type', 'application/json');
      res.setHeader('Content-Length', '2');
      res.end(req.method === 'HEAD' ? undefined : '{}');
      return;
    }
    res.locals.route = match;
    deps.dispatch[match.route.owner](req, res, next);
  });

  app.use(createErrorHandler(deps.logger));
  return app;
}
