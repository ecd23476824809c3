/**
 * The guard of a service's internal admin routes in the distributed mode (the manifest service's repository
 * deletion, the gc service's collector): the auth service's admin API checks the admin, then calls the service with a
 * proof under `upstreams.secret` (`adminCallProof`); the service believes nothing else.
 */
import type { RequestHandler } from 'express';
import { OciError } from '@lading/oci';
import { adminOfCall } from './request-context';

/**
 * Admits only admin calls proven under `upstreams.secret` (`adminOfCall`), naming the admin in `res.locals.admin`;
 * anything else is `401 UNAUTHORIZED` (a client reaching the service port directly, or no shared secret configured).
 */
export function adminCallGuard(secret: string | undefined): RequestHandler {
  return (req, res, next) => {
    const admin = adminOfCall(req, req.originalUrl, secret);
    if (!admin) {
      const why = secret ? 'an admin call without a valid proof' : 'admin calls need upstreams.secret, shared with the auth service';
      throw new OciError('UNAUTHORIZED', why);
    }
    res.locals.admin = admin;
    next();
  };
}
