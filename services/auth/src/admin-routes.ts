/**
 * The route table of an express router, read from the router itself: `METHOD /path` for every route, nested routers
 * included. The audit test walks the admin API's table, so a route added without a case in it fails the test.
 */
import type { Router } from 'express';

interface RouterLayer {
  rawPath?: string;
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: RouterLayer[] };
}

/** Every route of `router` as `METHOD <base><path>`, in the order they were added. */
export function routesOf(router: Router, base = ''): string[] {
  const routes: string[] = [];
  for (const layer of (router as unknown as { stack: RouterLayer[] }).stack) {
    if (layer.route) {
      for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') routes.push(`${method.toUpperCase()} ${base}${layer.route.path === '/' ? '' : layer.route.path}`);
    } else if (layer.handle.stack && typeof layer.rawPath === 'string') {
      routes.push(...routesOf(layer.handle as unknown as Router, `${base}${layer.rawPath}`));
    }
  }
  return routes;
}
