/**
 * The gateway: the registry's only public door. It owns dispatch over the route table (one table, matched against
 * the raw path), sets the headers every response carries, enforces the abuse limits, and hands each route to the
 * service that owns it — a router in the same process (embedded) or a proxy to a service's replicas (distributed).
 *
 * Pulls take a fast path: GET/HEAD of manifests and blobs (and `/v2/`) are matched, authorized and dispatched on
 * node's bare request and response, without express; everything else goes through express.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler, Router } from 'express';
import { csrfHolds, requiredAccess, sessionOf } from '@lading/access';
import {
  HttpApp,
  PRINCIPAL_HEADER,
  RawHandler,
  REQUEST_ID_HEADER,
  admitPrincipal,
  answerError,
  clientAddress,
  createServiceApp,
  finishServiceApp,
  localsOf,
  matchReadRoute,
  withFront,
  writeHead,
} from '@lading/http';
import { OciError, RouteMatch, assertMethodAllowed, matchRoute } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import type { Authorize } from './authorization';
import type { RateLimiter } from './rate-limiter';
import type { SessionTokens } from './session-tokens';

/** The header every response carries, as Docker clients expect. */
export const API_VERSION_HEADER = { name: 'Docker-Distribution-API-Version', value: 'registry/2.0' } as const;

/**
 * How the gateway reaches each service that owns routes. Handlers must work on bare node objects (pulls are
 * dispatched without express): an express app does, and so does the upstream proxy.
 */
export interface ServiceDispatch {
  blob: RawHandler;
  manifest: RawHandler;
  /** Never on the fast path, so an express handler will do. */
  auth: RawHandler | RequestHandler;
}

/** What the gateway is built from. */
export interface GatewayDeps {
  dispatch: ServiceDispatch;
  logger: Logger;
  /**
   * Whether to log one line per request: method, path, status, time, request id, the client's address (after
   * trusted proxies) and the verified principal (the token's subject; absent when anonymous). Never a header value.
   */
  accessLog?: boolean;
  /** Checks that the services behind the gateway answer (for `/readyz`); always ready when omitted (embedded). */
  ready?: () => Promise<void>;
  /** Token enforcement; every request is allowed when omitted (auth off). */
  authorize?: Authorize;
  /** Rate limits per client address and per principal; none when omitted. */
  limiter?: RateLimiter;
  /** Reverse proxies in front, for the client's address (`http.trustedProxies`). */
  trustedProxies?: number;
  /**
   * What `GET /version` answers (`ladingVersion()` of libs/runtime: the name and version of package.json); without it
   * there is no `/version`.
   */
  version?: { name: string; version: string; commit?: string };
  /** The web console's files under `/ui/` (see console-site.ts); no console when omitted. */
  console?: Router;
  /** Turns the console's session cookie into the bearer tokens `authorize` checks; cookies are ignored when omitted. */
  sessions?: SessionTokens;
}

/** The routes served on the fast path. */
const FAST_ROUTES = ['manifest', 'blob', 'base'] as const;
const BASE_BODY = Buffer.from('{}');
const BASE_HEADERS = { 'Content-Type': 'application/json', 'Content-Length': '2' };

/** Creates the gateway's app: express, with the pull fast path in front of it. */
export function createGateway(deps: GatewayDeps): HttpApp {
  const { logger } = deps;
  const trustedProxies = deps.trustedProxies ?? 0;

  /**
   * What every request goes through first: common headers, the request id, the access log, the address limit. A
   * request for the fast path gets the common headers as its `head`, written with its answer's (see `writeHead`).
   */
  function admit(req: IncomingMessage, res: ServerResponse, fast: boolean): void {
    // Only the gateway says who the caller is.
    admitPrincipal(req);
    const sent = req.headers[REQUEST_ID_HEADER];
    const requestId = (typeof sent === 'string' && sent.slice(0, 128)) || randomUUID();
    req.headers[REQUEST_ID_HEADER] = requestId;
    if (fast) {
      localsOf(res).head = [API_VERSION_HEADER.name, API_VERSION_HEADER.value, 'X-Request-Id', requestId];
    } else {
      res.setHeader(API_VERSION_HEADER.name, API_VERSION_HEADER.value);
      res.setHeader('X-Request-Id', requestId);
    }
    const limiter = req.url !== '/healthz' && req.url !== '/readyz' ? deps.limiter : undefined;
    const addr = deps.accessLog || limiter ? clientAddress(req, trustedProxies) : '';
    if (deps.accessLog) {
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        // Set by the authorization step only (the client's own was dropped above); '' for an anonymous token.
        const principal = req.headers[PRINCIPAL_HEADER];
        logger.info(
          {
            method: req.method,
            path: req.url?.split('?')[0],
            status: res.statusCode,
            ms: Number(process.hrtime.bigint() - started) / 1e6,
            requestId,
            addr,
            principal: typeof principal === 'string' && principal !== '' ? principal : undefined,
          },
          'request',
        );
      });
    }
    limiter?.admitAddress(addr);
  }

  /**
   * A request with the console's session cookie and no Authorization header: one that changes something must carry
   * the session's CSRF token (signing in excepted: it makes a new session, whatever cookie was left); then it is
   * given the bearer token of the session's principal for the access its route needs. Requests with an
   * Authorization header (docker, skopeo, scripts) never get here.
   */
  async function admitSession(req: IncomingMessage, match: RouteMatch, session: string): Promise<void> {
    const method = req.method ?? 'GET';
    const signIn = match.route.name === 'session' && method === 'POST';
    if (method !== 'GET' && method !== 'HEAD' && !signIn && !csrfHolds(req.headers, session)) {
      throw new OciError('DENIED', 'a request made with the console session must carry its X-CSRF-Token header');
    }
    if (match.route.name === 'session' && method === 'DELETE') deps.sessions?.forget(session);
    if (!deps.authorize || !deps.sessions || match.route.owner === 'auth') return;
    const token = await deps.sessions.tokenFor(session, requiredAccess(match, method));
    if (token) req.headers.authorization = `Bearer ${token}`;
  }

  /** Checks the token (when auth is on) and the principal's rate limit. */
  async function authorize(req: IncomingMessage, res: ServerResponse, match: RouteMatch): Promise<void> {
    const session = req.headers.authorization === undefined ? sessionOf(req.headers) : null;
    if (session) await admitSession(req, match, session);
    if (!deps.authorize || match.route.owner === 'auth') return;
    await deps.authorize(req, res, match);
    const principal = req.headers[PRINCIPAL_HEADER];
    // Anonymous tokens name nobody (''): their callers are told apart, and limited, by address.
    if (deps.limiter && typeof principal === 'string' && principal !== '') deps.limiter.admitPrincipal(principal);
  }

  function answerBase(req: IncomingMessage, res: ServerResponse): void {
    writeHead(res, 200, BASE_HEADERS);
    res.end(req.method === 'HEAD' ? undefined : BASE_BODY);
  }

  function serveFast(req: IncomingMessage, res: ServerResponse, match: RouteMatch): void {
    if (match.route.owner === 'gateway') return answerBase(req, res);
    localsOf(res).route = match;
    // FAST_ROUTES name only routes of these two.
    deps.dispatch[match.route.owner as 'blob' | 'manifest'](req, res, (err) => answerError(req, res, err ?? new OciError('NOT_FOUND'), logger));
  }

  const app = createServiceApp(deps.ready ?? (async () => undefined));
  // Outside /v2/ and the route table, like the probes: which Lading answers, for operators and their tools. Anyone
  // may ask (the version is no secret a scanner could not guess from the behaviour), and /v2/'s fast path stays lean.
  const { version } = deps;
  if (version) app.get('/version', (_req, res) => void res.json(version));
  // The console's files, and `/` sent to them; its API goes through the route table below.
  if (deps.console) app.use(deps.console);
  app.use(async (req, res, next) => {
    const match = matchRoute(req.path);
    if (!match) {
      throw new OciError('NOT_FOUND', undefined, { path: req.path.slice(0, 300) });
    }
    assertMethodAllowed(match, req.method);
    await authorize(req, res, match);
    if (match.route.owner === 'gateway') return answerBase(req, res);
    res.locals.route = match;
    // An express request is what every kind of handler takes.
    (deps.dispatch[match.route.owner] as RequestHandler)(req, res, next);
  });

  // Errors, and what no service answered, are rendered in the OCI envelope, never by express's HTML final handler.
  return withFront(finishServiceApp(app, logger), (req, res) => {
    const match = matchReadRoute(req, res, FAST_ROUTES);
    try {
      admit(req, res, match !== null);
    } catch (err) {
      // Refused before anything read the body: drop it, so that the connection stays usable.
      req.resume();
      answerError(req, res, err, logger);
      return true;
    }
    if (!match) return false;
    // Without auth there is nothing to wait for (a promise would cost a turn of the microtask queue per pull).
    if (deps.authorize) {
      authorize(req, res, match)
        .then(() => serveFast(req, res, match))
        .catch((err: unknown) => answerError(req, res, err, logger));
    } else {
      try {
        serveFast(req, res, match);
      } catch (err) {
        answerError(req, res, err, logger);
      }
    }
    return true;
  });
}
