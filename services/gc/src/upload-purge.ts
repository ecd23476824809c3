/**
 * Purging abandoned upload sessions: a session untouched for the upload TTL (and holding no write lease) is
 * deleted with a tombstone for its stored data in one transaction; the data is deleted after the commit (retried
 * from the tombstone when storage fails).
 */
import * as meta from '@lading/metadata';
import type { GcContext } from './gc-context';
import { deleteObjectOf } from './object-deletion';

/** How many sessions one purge step takes. */
export const UPLOAD_PURGE_BATCH = 200;
/** How many sessions' data are deleted at once. */
const PARALLEL_DELETES = 8;

/** Expires one batch of abandoned sessions and deletes their data; resolves with how many sessions it purged. */
export async function purgeExpiredUploads(ctx: GcContext): Promise<number> {
  const { settings } = ctx;
  const ids = await ctx.db.transaction(async (tx) => {
    await meta.setGcTimeouts(tx, settings.lockTimeoutMs, settings.statementTimeoutMs);
    return meta.expireUploads(tx, settings.uploadTtlMs, UPLOAD_PURGE_BATCH);
  });
  ctx.counters.deleted.uploads += ids.length;
  if (ids.length > 0) ctx.logger.info({ sessions: ids.length }, 'gc: purged abandoned upload sessions');
  const queue = [...ids];
  const deleteSome = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) await deleteObjectOf(ctx, `upload:${id}`);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_DELETES, queue.length) }, deleteSome));
  return ids.length;
}
