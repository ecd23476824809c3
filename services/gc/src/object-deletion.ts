/**
 * Deleting stored objects from their tombstones, after their metadata is gone. Holding the tombstone row, the
 * collector checks that no blob row names the digest again (a re-upload between the metadata delete and now: the
 * object is the re-upload's and stays), that no upload has pinned it (an upload about to record it: retried
 * later) and that no backup holds object deletions (deletion-hold.ts: retried later), then deletes the object
 * (idempotent) and the tombstone. A storage error keeps the tombstone for a retry: an object is never assumed deleted. See libs/metadata/src/gc-tombstones.ts for the uploads' side.
 */
import * as meta from '@lading/metadata';
import type { SqlExecutor, Tombstone } from '@lading/metadata';
import { blobKey } from '@lading/storage';
import { GcContext, describeError } from './gc-context';
import { backoffMs } from './gc-settings';

async function runTombstone(ctx: GcContext, claim: (tx: SqlExecutor) => Promise<Tombstone | null>): Promise<boolean> {
  const { settings, counters, store } = ctx;
  return ctx.db.transaction(async (tx) => {
    await meta.setGcTimeouts(tx, settings.lockTimeoutMs, settings.statementTimeoutMs);
    const t = await claim(tx);
    if (!t) return false;
    if (t.kind === 'blob') {
      await ctx.hooks.beforeObjectDelete?.({ kind: 'object', digest: t.target });
      const inUse = await meta.blobObjectInUse(tx, t.target, settings.pinTtlMs);
      if (inUse === 'recorded') {
        await meta.deleteTombstone(tx, t.key);
        ctx.logger.info({ digest: t.target }, 'gc: object kept, the blob was recorded again after its metadata was deleted');
        return true;
      }
      if (inUse === 'pinned') {
        await meta.retryTombstoneLater(tx, t.key, backoffMs(0, settings.maxBackoffMs), null);
        counters.postponed.pinned++;
        return true;
      }
      // Checked holding the tombstone, after the blob row was found gone: see deletion-hold.ts for why a backup that
      // took its hold before its snapshot never loses an object the snapshot names. A backup lasts a while: the
      // tombstone comes back every few seconds (at most the review delay's backoff cap) until it is let go.
      if (ctx.deletionHold.held) {
        await meta.retryTombstoneLater(tx, t.key, backoffMs(4, settings.maxBackoffMs), null);
        counters.postponed.held++;
        return true;
      }
    }
    try {
      // The tombstone stays locked while the object goes: an upload pinning this digest waits for it.
      if (t.kind === 'blob') await store.delete(blobKey(t.target));
      else await store.deleteUpload(t.target);
    } catch (err) {
      counters.storageErrors++;
      ctx.logger.warn({ err, key: t.key, attempts: t.attempts + 1 }, 'gc: deleting a stored object failed; will retry from its tombstone');
      await meta.retryTombstoneLater(tx, t.key, backoffMs(t.attempts, settings.maxBackoffMs), describeError(err));
      return true;
    }
    await meta.deleteTombstone(tx, t.key);
    if (t.kind === 'blob') {
      counters.deleted.objects++;
      counters.bytesFreed += t.size;
    }
    return true;
  });
}

/** Deletes the object of one tombstone now, unless another collector holds it; false when there was none to take. */
export function deleteObjectOf(ctx: GcContext, key: string): Promise<boolean> {
  return runTombstone(ctx, (tx) => meta.claimTombstoneByKey(tx, key));
}

/** Deletes the object of the oldest due tombstone (a retry, or one whose deletion never ran); false when none is due. */
export function deleteNextObject(ctx: GcContext): Promise<boolean> {
  return runTombstone(ctx, meta.claimTombstone);
}
