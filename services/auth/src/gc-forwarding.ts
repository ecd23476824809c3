/**
 * The collector's admin routes in the distributed mode's admin API: `GET /admin/v1/gc/status`, `GET
 * /admin/v1/gc/dry-run[?all=1]` and `POST /admin/v1/gc/collect`, behind the admin API's guard (global admins only,
 * admin-authorization.ts) and recorded in its audit trail like every admin change, are forwarded
 * (admin-forwarding.ts) to a gc service replica, which answers them with the same router as the embedded registry
 * (services/gc/src/gc-admin-api.ts) over its own collector. A collection asked for runs on the replica that took the
 * call, and its status lists the collections asked for there; an answer slower than `upstreams.timeout` is a 503
 * while the collection goes on.
 */
import express, { Router } from 'express';
import type { ServiceClient } from '@lading/http';
import { INTERNAL_GC_ADMIN_PATH } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import { forwardAdminCall } from './admin-forwarding';

/** What the forwarding router is built from. */
export interface GcForwardingDeps {
  /** A client of the gc service's replicas (`upstreams.gc`); the routes answer 503 without one. */
  collectors: Pick<ServiceClient, 'call'> | null;
  /** `upstreams.secret`, shared with the gc service; the routes answer 503 without it. */
  secret: string | undefined;
  logger: Logger;
}

/** A dry run lists every review it would act on: more than a status. */
const DRY_RUN_MAX_BYTES = 32 << 20;

/** Creates the router mounted at `/admin/v1/gc` in the auth service of the distributed mode. */
export function createGcForwardingRouter(deps: GcForwardingDeps): Router {
  const router = express.Router();
  const to = {
    client: deps.collectors,
    secret: deps.secret,
    logger: deps.logger,
    internalPath: INTERNAL_GC_ADMIN_PATH,
    maxBytes: DRY_RUN_MAX_BYTES,
    unconfigured: "the collector's admin routes need upstreams.gc and upstreams.secret (shared with the gc service)",
    unanswered: 'no gc service replica answered: ask again',
  };
  router.get('/status', (req, res) => forwardAdminCall(to, req, res, 'GET'));
  router.get('/dry-run', (req, res) => forwardAdminCall(to, req, res, 'GET'));
  router.post('/collect', (req, res) => forwardAdminCall(to, req, res, 'POST'));
  return router;
}
