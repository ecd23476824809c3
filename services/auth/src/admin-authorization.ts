/**
 * Who may call which admin route (issue 24, "namespaces run by their owners"): the one table of the admin API's
 * authorization, and the guard that applies it.
 *
 * A global admin (`users.is_admin`) may call every route. A namespace admin, a user holding the `admin` role on a
 * namespace (directly or through a `group:` grant), may call the routes the table marks `namespace`, when every
 * namespace the route reads from the request is one it administers (the namespace itself, or one beneath it:
 * `team` covers `team/sub`, as its grants do on /v2), and the routes it marks `listing`, which answer only what the
 * caller administers. Everything else (`global`, and any route missing from the table) is for global admins only.
 * Robots and anonymous callers never use the admin API; plain users are refused at its door.
 */
import express, { NextFunction, Request, Response, Router } from 'express';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import { OciError } from '@lading/oci';
import { findSubscription } from '@lading/webhooks';
import type { Principal } from './principals';

/** What a caller of the admin API administers: everything, or some namespaces (and what is beneath them). */
export interface AdminScope {
  global: boolean;
  /** The namespaces it holds `admin` on (empty for a global admin, who needs none). */
  namespaces: readonly string[];
}

/** Whether `scope` administers `namespace` (a namespace prefix, or a repository name): itself or beneath one of its. */
export function administers(scope: AdminScope, namespace: string | undefined): boolean {
  if (scope.global) return true;
  if (!namespace) return false;
  return scope.namespaces.some((p) => namespace === p || namespace.startsWith(`${p}/`));
}

/**
 * The scope of an admin API caller: global for an admin user, the namespaces it administers for another user (its
 * groups' grants included), null for robots, anonymous, and users that administer nothing.
 */
export async function adminScopeOf(db: Database, principal: Principal): Promise<AdminScope | null> {
  if (principal.isAdmin) return { global: true, namespaces: [] };
  if (principal.type !== 'user' || !principal.name) return null;
  const namespaces = await meta.adminNamespaces(db, principal.name, principal.groups ?? []);
  return namespaces.length > 0 ? { global: false, namespaces } : null;
}

/** The scope the admin API's door put on a request; none (nothing administered) when the door did not run. */
export function adminScope(res: Response): AdminScope {
  return (res.locals.adminScope as AdminScope | undefined) ?? { global: false, namespaces: [] };
}

/** The namespaces a namespace-scoped route acts on, read from the request; an undefined one is never administered. */
type NamespacesOf = (req: Request, db: Database) => Promise<Array<string | undefined>>;

/** One route's rule. */
export type AdminRouteRule =
  /** Global admins only. */
  | { access: 'global' }
  /** Also namespace admins of every namespace `namespaces` reads from the request. */
  | { access: 'namespace'; from: string; namespaces: NamespacesOf }
  /** Also any namespace admin: the route answers only what the caller administers. */
  | { access: 'listing' };

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const bodyOf = (req: Request): Record<string, unknown> => (typeof req.body === 'object' && req.body !== null ? (req.body as Record<string, unknown>) : {});

/** A robot's namespace, from its name (`<namespace>+<name>`); undefined for a global robot. */
export function robotNamespace(name: string): string | undefined {
  const plus = name.lastIndexOf('+');
  return plus > 0 ? name.slice(0, plus) : undefined;
}

const GLOBAL: AdminRouteRule = { access: 'global' };
const LISTING: AdminRouteRule = { access: 'listing' };
const bodyPrefix: AdminRouteRule = { access: 'namespace', from: 'body `prefix`', namespaces: async (req) => [text(bodyOf(req).prefix)] };
const queryPrefix: AdminRouteRule = { access: 'namespace', from: 'query `prefix`', namespaces: async (req) => [text(req.query.prefix)] };
/** The namespace filter of the webhook subscription the path names; undefined when there is none. */
async function webhookNamespace(req: Request, db: Database): Promise<string | undefined> {
  const id = text(req.params.id) ?? '';
  const found = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id) ? await findSubscription(db, id) : null;
  return found?.namespace;
}
/** A webhook route: the namespace of the subscription the path names. */
const webhook: AdminRouteRule = { access: 'namespace', from: "the webhook's `namespace`", namespaces: async (req, db) => [await webhookNamespace(req, db)] };

/**
 * Every admin route (`METHOD path` under `/admin/v1`, as routesOf reads them off the router) and who may call it.
 * A route missing here is for global admins only; the scope-matrix spec fails on a route missing here.
 */
export const ADMIN_ROUTE_RULES: Readonly<Record<string, AdminRouteRule>> = {
  'GET /users': GLOBAL,
  'POST /users': GLOBAL,
  'PUT /users/:name/password': GLOBAL,
  'POST /users/:name/disable': GLOBAL,
  'POST /users/:name/enable': GLOBAL,
  'DELETE /users/:name': GLOBAL,
  'GET /users/:name/tokens': GLOBAL,
  'POST /users/:name/tokens': GLOBAL,
  'DELETE /users/:name/tokens/:token': GLOBAL,
  'GET /robots': LISTING,
  'POST /robots': { access: 'namespace', from: 'body `namespace`', namespaces: async (req) => [text(bodyOf(req).namespace)] },
  'DELETE /robots/:name': { access: 'namespace', from: "the robot's name (`<namespace>+<name>`)", namespaces: async (req) => [robotNamespace(text(req.params.name) ?? '')] },
  'GET /namespaces': LISTING,
  'POST /namespaces': GLOBAL,
  'PATCH /namespaces': queryPrefix,
  'DELETE /namespaces': GLOBAL,
  'POST /grants': bodyPrefix,
  'DELETE /grants': bodyPrefix,
  'GET /webhooks/': LISTING,
  'POST /webhooks/': { access: 'namespace', from: 'body `namespace`', namespaces: async (req) => [text(bodyOf(req).namespace)] },
  'GET /webhooks/:id': webhook,
  'PATCH /webhooks/:id': {
    access: 'namespace',
    from: "the webhook's `namespace`, and the body's when it changes it",
    namespaces: async (req, db) => {
      const stored = await webhookNamespace(req, db);
      const body = bodyOf(req);
      return 'namespace' in body ? [stored, text(body.namespace)] : [stored];
    },
  },
  'DELETE /webhooks/:id': webhook,
  'POST /webhooks/:id/rotate': webhook,
  'GET /webhooks/:id/deliveries': webhook,
  'GET /webhooks/:id/deliveries/:deliveryId': webhook,
  'POST /webhooks/:id/deliveries/:deliveryId/redeliver': webhook,
  'POST /webhooks/:id/ping': webhook,
  'GET /outbox/parked': GLOBAL,
  'POST /outbox/parked/:id/requeue': GLOBAL,
  'GET /quotas/': GLOBAL,
  'PUT /quotas/*namespace': GLOBAL,
  'DELETE /quotas/*namespace': GLOBAL,
  'GET /usage/': GLOBAL,
  'GET /usage/*namespace': GLOBAL,
  'GET /audit/': {
    access: 'namespace',
    from: 'query `namespace` or `repository` (both, when both are given)',
    namespaces: async (req) => {
      // A parameter given in any other form than one string counts as one the caller does not administer.
      const given = (['namespace', 'repository'] as const).filter((key) => req.query[key] !== undefined).map((key) => text(req.query[key]));
      return given.length > 0 ? given : [undefined];
    },
  },
  'GET /proxies/': GLOBAL,
  'PUT /proxies/*namespace': GLOBAL,
  'DELETE /proxies/*namespace': GLOBAL,
  'GET /gc/status': GLOBAL,
  'GET /gc/dry-run': GLOBAL,
  'POST /gc/collect': GLOBAL,
  'GET /backup/': GLOBAL,
  'DELETE /repositories/^\\/(.+)$/': GLOBAL,
  'POST /keys/rotate': GLOBAL,
};

const DENIED_HERE = () => new OciError('DENIED', 'this admin route is for global admins, or for admins of the namespace it acts on');

/**
 * The guard of the table, for the admin router after its door (which sets the caller's scope): passes global admins,
 * and namespace admins on a route the table opens to them. The routes are matched by express itself (a router of
 * the table's paths), so a guard and its route never disagree on what a path is.
 */
export function createRouteAuthorization(db: Database, rules: Readonly<Record<string, AdminRouteRule>> = ADMIN_ROUTE_RULES) {
  const table: Router = express.Router();
  for (const [route, rule] of Object.entries(rules)) {
    if (rule.access === 'global') continue;
    const [method, path] = route.split(' ');
    // `/webhooks/` (a router's `/` mounted at `/webhooks`) answers `/webhooks` too: so does its rule.
    const matchPath = path.length > 1 ? path.replace(/\/$/, '') : path;
    const add = table[method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete'].bind(table);
    add(matchPath, async (req: Request, res: Response, next: NextFunction) => {
      const scope = adminScope(res);
      if (rule.access === 'namespace') {
        const namespaces = await rule.namespaces(req, db);
        if (namespaces.length === 0 || !namespaces.every((ns) => administers(scope, ns))) throw DENIED_HERE();
      }
      res.locals.adminRouteAllowed = true;
      next();
    });
  }
  // Past the table: a namespace admin whose route matched no rule of its is refused.
  table.use((_req: Request, res: Response, next: NextFunction) => {
    if (res.locals.adminRouteAllowed !== true) throw DENIED_HERE();
    next();
  });
  // A plain function, not the router itself: the route table read off the admin router (routesOf) must not list
  // the guard's matchers as routes.
  return (req: Request, res: Response, next: NextFunction): void => {
    if (adminScope(res).global) return next();
    table(req, res, next);
  };
}
