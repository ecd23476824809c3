/**
 * The repository admin routes, mounted under the admin API's guard (`/admin/v1/repositories`, admins only):
 * `DELETE /admin/v1/repositories/<name>[?force=true]` deletes a repository (repository-deletion.ts) and answers what
 * it removed. The embedded registry mounts them; the name is matched by the repository grammar, not a path param,
 * because it contains slashes.
 */
import express, { Router } from 'express';
import { durationMs } from '@lading/config';
import type { EventContext } from '@lading/events';
import { requestContext } from '@lading/http';
import { OciError, errors, isValidRepositoryName } from '@lading/oci';
import type { ServiceDeps } from '@lading/runtime';
import { removeRepository } from './repository-deletion';

/** What the repository admin routes are built from. */
export interface RepositoryAdminDeps extends ServiceDeps {
  /** Drops what this process's caches hold of a deleted repository, before the deletion is answered. */
  forgetRepository?: (repository: string) => void;
}

const FLAGS: Record<string, boolean> = { '1': true, true: true, '0': false, false: false };

/** Reads the `force` query flag: absent is false; anything but 1/true/0/false is a 400. */
function forceFlag(value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value === 'string' && Object.hasOwn(FLAGS, value)) return FLAGS[value];
  throw new OciError('UNSUPPORTED', 'force must be 1, true, 0 or false', undefined, { status: 400 });
}

/** Creates the repository admin router (authentication is the mounting admin API's; `res.locals.admin` names the admin). */
export function createRepositoryAdminRouter(deps: RepositoryAdminDeps): Router {
  const router = express.Router();
  const writes = { db: deps.db, events: deps.events, reviewDelayMs: durationMs(deps.config.gc.reviewDelay) };
  router.delete(/^\/(.+)$/, async (req, res) => {
    const repository = req.path.slice(1);
    if (!isValidRepositoryName(repository)) throw errors.nameInvalid('not a valid repository name', { name: repository.slice(0, 300) });
    const force = forceFlag(req.query.force);
    const context: EventContext = { ...requestContext(req, deps.config), actor: { name: String(res.locals.admin), type: 'user' } };
    const deleted = await removeRepository(writes, { repository, force, context });
    deps.forgetRepository?.(repository);
    deps.onEventsCommitted?.();
    res.json(deleted);
  });
  return router;
}
