/**
 * The repository admin routes: `DELETE <mount>/<name>[?force=true]` deletes a repository (repository-deletion.ts) and
 * answers what it removed: `200` when done, `202` with `pending: true` when the collector finishes a large one. The name is matched by the repository grammar, not a path param, because it contains
 * slashes. One router serves both modes:
 * - embedded: mounted under the admin API's guard at `/admin/v1/repositories` (admins only);
 * - distributed: the manifest service mounts it at `INTERNAL_REPOSITORY_ADMIN_PATH` behind `adminCallGuard` (@lading/http), and the
 *   auth service's admin API forwards `/admin/v1/repositories/...` there once it has checked the admin
 *   (services/auth/src/repository-forwarding.ts).
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
  const batches = { batchSize: deps.config.gc.repositoryDeletionBatch, inline: deps.config.gc.repositoryDeletionInlineBatches };
  router.delete(/^\/(.+)$/, async (req, res) => {
    const repository = req.path.slice(1);
    if (!isValidRepositoryName(repository)) throw errors.nameInvalid('not a valid repository name', { name: repository.slice(0, 300) });
    const force = forceFlag(req.query.force);
    const context: EventContext = { ...requestContext(req, deps.config), actor: { name: String(res.locals.admin), type: 'user' } };
    // Once out of sight: this process's caches forget it, and the relay publishes the event, before the batches run.
    const deleted = await removeRepository(writes, { repository, force, context }, batches, () => {
      deps.forgetRepository?.(repository);
      deps.onEventsCommitted?.();
    });
    // 202: gone from every read and listing, and the collector deletes what the request's batches left.
    res.status(deleted.pending ? 202 : 200).json(deleted);
  });
  return router;
}
