/**
 * The route table of an express router, read from the router itself: every route's method and path, those of the
 * routers mounted in it included. The audit spec walks the admin API's table (a route added without a case there
 * fails it), and the hostile-input spec sends hostile requests to every route of it.
 */
import type { Router } from 'express';

/** One route as its router declares it: a method and an express path (`/users/:name/tokens`, `/webhooks/`). */
export interface RouterRoute {
  method: string;
  path: string;
}

interface RouterLayer {
  rawPath?: unknown;
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: RouterLayer[] };
}

/** Every route of `router` under `prefix`, in the order they were added (a router mounted at `/` adds no segment). */
export function routesOf(router: Router, prefix = ''): RouterRoute[] {
  const routes: RouterRoute[] = [];
  for (const layer of (router as unknown as { stack: RouterLayer[] }).stack) {
    if (layer.route) {
      for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') routes.push({ method: method.toUpperCase(), path: `${prefix}${layer.route.path}` });
    } else if (layer.handle?.stack && typeof layer.rawPath === 'string') {
      routes.push(...routesOf(layer.handle as unknown as Router, layer.rawPath === '/' ? prefix : `${prefix}${layer.rawPath}`));
    }
  }
  return routes;
}
