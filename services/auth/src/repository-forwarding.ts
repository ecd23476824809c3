/**
 * Repository deletion in the distributed mode's admin API: `DELETE /admin/v1/repositories/<name>[?force=true]`,
 * behind the admin API's guard, is forwarded to a manifest service replica, which owns manifests and runs the same
 * domain operation as the embedded registry (services/manifest/src/repository-deletion.ts). The call names the admin
 * with a proof under `upstreams.secret` bound to the method and path (`adminCallProof`), so the manifest service
 * believes it came from here; the replica's answer (the summary, or its OCI error) is passed back unchanged.
 */
import { randomUUID } from 'node:crypto';
import express, { type Request, Router } from 'express';
import { ADMIN_CALL_HEADER, ADMIN_CALL_PROOF_HEADER, REQUEST_ID_HEADER, type ServiceClient, adminCallProof } from '@lading/http';
import { INTERNAL_REPOSITORY_ADMIN_PATH, OciError } from '@lading/oci';
import type { Logger } from '@lading/telemetry';

/** What the forwarding router is built from. */
export interface RepositoryForwardingDeps {
  /** A client of the manifest service's replicas (`upstreams.manifest`); deletions answer 503 without one. */
  manifests: Pick<ServiceClient, 'call'> | null;
  /** `upstreams.secret`, shared with the manifest service; deletions answer 503 without it. */
  secret: string | undefined;
  logger: Logger;
}

function firstHeader(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Creates the router mounted at `/admin/v1/repositories` in the auth service of the distributed mode. */
export function createRepositoryForwardingRouter(deps: RepositoryForwardingDeps): Router {
  const router = express.Router();
  router.delete(/^\/.+$/, async (req, res) => {
    const { manifests, secret } = deps;
    if (!manifests || !secret) {
      throw new OciError('UNAVAILABLE', 'repository deletion needs upstreams.manifest and upstreams.secret (shared with the manifest service)');
    }
    // `req.url` is the raw path after the mount with its query: the manifest service checks the name itself.
    const path = `${INTERNAL_REPOSITORY_ADMIN_PATH}${req.url}`;
    const requestId = firstHeader(req, REQUEST_ID_HEADER) ?? randomUUID();
    const admin = String(res.locals.admin);
    const headers: Record<string, string> = {
      [REQUEST_ID_HEADER]: requestId,
      [ADMIN_CALL_HEADER]: admin,
      [ADMIN_CALL_PROOF_HEADER]: adminCallProof(secret, requestId, 'DELETE', path, admin),
    };
    for (const name of ['user-agent', 'traceparent']) {
      const value = firstHeader(req, name);
      if (value) headers[name] = value;
    }
    let reply;
    try {
      reply = await manifests.call('DELETE', path, headers);
    } catch (err) {
      deps.logger.warn({ err }, 'a repository deletion could not be forwarded to the manifest service');
      throw new OciError('UNAVAILABLE', 'no manifest service replica answered the deletion: ask again (a repository already deleted answers 404 NAME_UNKNOWN)');
    }
    const contentType = reply.headers['content-type'];
    if (typeof contentType === 'string') res.setHeader('Content-Type', contentType);
    res.status(reply.status).send(reply.body);
  });
  return router;
}
