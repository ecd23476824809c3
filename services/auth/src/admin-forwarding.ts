/**
 * The admin API's calls to the services that own what an admin route changes, in the distributed mode: the auth
 * service has checked the admin (the admin API's guard, the one authorization of `/admin/v1`), then sends the request
 * on to an internal path of a service replica, naming the admin with a proof under `upstreams.secret` bound to the
 * method and path (`adminCallProof`), so that the service believes it came from here (`adminCallGuard`). The
 * replica's answer (its JSON, or its OCI error) is passed back unchanged. Repository deletion goes to the manifest
 * service (repository-forwarding.ts), the collector's routes to the gc service (gc-forwarding.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { ADMIN_CALL_HEADER, ADMIN_CALL_PROOF_HEADER, REQUEST_ID_HEADER, type ServiceClient, adminCallProof } from '@lading/http';
import { OciError } from '@lading/oci';
import type { Logger } from '@lading/telemetry';

/** Where one mount's admin calls go. */
export interface AdminForwarding {
  /** A client of the service's replicas; calls answer 503 without one. */
  client: Pick<ServiceClient, 'call'> | null;
  /** `upstreams.secret`, shared with the service; calls answer 503 without it. */
  secret: string | undefined;
  /** The service's internal path the mount stands for (`INTERNAL_GC_ADMIN_PATH`). */
  internalPath: string;
  /** What the 503 says when the client or the secret is missing (which settings the route needs). */
  unconfigured: string;
  /** What the 503 says when no replica answered. */
  unanswered: string;
  /** The largest answer passed back (the client's default, 1 MiB, when omitted). */
  maxBytes?: number;
  logger: Logger;
}

function firstHeader(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Sends the request (its method, and its path after the mount with its query: `req.url`) to the service's internal
 * path on the admin's behalf (`res.locals.admin`, set by the admin guard), and answers what the replica answered.
 */
export async function forwardAdminCall(to: AdminForwarding, req: Request, res: Response, method: 'GET' | 'POST' | 'DELETE'): Promise<void> {
  const { client, secret } = to;
  if (!client || !secret) throw new OciError('UNAVAILABLE', to.unconfigured);
  const path = `${to.internalPath}${req.url}`;
  const requestId = firstHeader(req, REQUEST_ID_HEADER) ?? randomUUID();
  const admin = String(res.locals.admin);
  const headers: Record<string, string> = {
    [REQUEST_ID_HEADER]: requestId,
    [ADMIN_CALL_HEADER]: admin,
    [ADMIN_CALL_PROOF_HEADER]: adminCallProof(secret, requestId, method, path, admin),
  };
  for (const name of ['user-agent', 'traceparent']) {
    const value = firstHeader(req, name);
    if (value) headers[name] = value;
  }
  let reply;
  try {
    reply = await client.call(method, path, headers, to.maxBytes);
  } catch (err) {
    to.logger.warn({ err, path: to.internalPath }, 'an admin call could not be forwarded');
    throw new OciError('UNAVAILABLE', to.unanswered);
  }
  const contentType = reply.headers['content-type'];
  if (typeof contentType === 'string') res.setHeader('Content-Type', contentType);
  res.status(reply.status).send(reply.body);
}
