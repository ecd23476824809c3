/**
 * Repository deletion in the distributed mode's admin API: `DELETE /admin/v1/repositories/<name>[?force=true]`,
 * behind the admin API's guard, is forwarded (admin-forwarding.ts) to a manifest service replica, which owns manifests
 * and runs the same domain operation as the embedded registry (services/manifest/src/repository-deletion.ts).
 */
import express, { Router } from 'express';
import type { ServiceClient } from '@lading/http';
import { INTERNAL_REPOSITORY_ADMIN_PATH } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import { forwardAdminCall } from './admin-forwarding';

/** What the forwarding router is built from. */
export interface RepositoryForwardingDeps {
  /** A client of the manifest service's replicas (`upstreams.manifest`); deletions answer 503 without one. */
  manifests: Pick<ServiceClient, 'call'> | null;
  /** `upstreams.secret`, shared with the manifest service; deletions answer 503 without it. */
  secret: string | undefined;
  logger: Logger;
}

/** Creates the router mounted at `/admin/v1/repositories` in the auth service of the distributed mode. */
export function createRepositoryForwardingRouter(deps: RepositoryForwardingDeps): Router {
  const router = express.Router();
  const to = {
    client: deps.manifests,
    secret: deps.secret,
    logger: deps.logger,
    // `req.url` is the raw path after the mount with its query: the manifest service checks the name itself.
    internalPath: INTERNAL_REPOSITORY_ADMIN_PATH,
    unconfigured: 'repository deletion needs upstreams.manifest and upstreams.secret (shared with the manifest service)',
    unanswered: 'no manifest service replica answered the deletion: ask again (a repository already deleted answers 404 NAME_UNKNOWN)',
  };
  router.delete(/^\/.+$/, (req, res) => forwardAdminCall(to, req, res, 'DELETE'));
  return router;
}
