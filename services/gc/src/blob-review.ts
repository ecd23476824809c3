/**
 * Blob reviews. A blob is deleted when no manifest references it and every repository link to it is older than
 * the review delay (a newer link is an upload whose manifest may still come: the review is moved to when the
 * link's grace ends). Links are not references: a blob that only repositories link is a dangling upload and goes
 * with its links, as in GitLab's online GC. A blob that is kept keeps all its links (unlinking one repository
 * while a push there checks its links would be a race for nothing: links cost no storage).
 *
 * Invariant: metadata is deleted before the object. The review deletes links and row and writes a tombstone in
 * one transaction that holds the blob row exclusively; the object is deleted afterwards (object-deletion.ts).
 */
import { appendEvent, EVENT_TYPES } from '@lading/events';
import * as meta from '@lading/metadata';
import type { SqlExecutor } from '@lading/metadata';
import { GC_EVENT_CONTEXT, GcContext, GcTarget, putReviewOff, reviewSpan } from './gc-context';
import { backoffMs } from './gc-settings';
import { deleteObjectOf } from './object-deletion';

/** What a blob review decides. */
export type BlobDecision =
  | { action: 'gone'; digest: string; reason: string }
  | { action: 'keep'; digest: string; size: number; reason: string }
  | { action: 'reschedule'; digest: string; size: number; reason: string; afterMs: number }
  | { action: 'delete'; digest: string; size: number; reason: string; links: meta.GcBlobLink[]; afterAssumedDeletes: boolean };

/** How a blob is looked at: locked (the worker) or read only (the dry run), and what to pretend is already gone. */
export interface BlobLookOptions {
  lock: boolean;
  graceMs: number;
  /** Manifests (`<repositoryId>@<digest>`) to count as deleted: the dry run's view of what an earlier review removes. */
  assumeDeleted?: ReadonlySet<string>;
  /** Runs once the row is read (and locked). */
  afterLock?: () => Promise<void>;
}

/** The key of a manifest in `assumeDeleted` sets. */
export function manifestKey(repositoryId: number, digest: string): string {
  return `${repositoryId}@${digest}`;
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** Decides a blob's fate from its references and links. */
export async function decideBlob(tx: SqlExecutor, digest: string, options: BlobLookOptions): Promise<BlobDecision> {
  const blob = await meta.readBlobForCollection(tx, digest, options.lock);
  if (!blob) return { action: 'gone', digest, reason: 'no blob row (already deleted)' };
  await options.afterLock?.();
  const assumed = options.assumeDeleted;
  const limit = assumed && assumed.size > 0 ? 1000 : 1;
  const referrers = await meta.manifestsReferencingBlob(tx, digest, limit);
  const live = assumed ? referrers.filter((r) => !assumed.has(manifestKey(r.repositoryId, r.digest))) : referrers;
  if (live.length > 0 || (limit > 1 && referrers.length === limit)) {
    const first = live[0] ?? referrers[0];
    return { action: 'keep', digest, size: blob.size, reason: `referenced by manifest ${first.repository}@${first.digest}` };
  }
  const links = await meta.blobLinks(tx, digest, options.graceMs, options.lock);
  const now = Date.now();
  const young = links.filter((l) => l.young);
  if (young.length > 0) {
    const newest = young.reduce((a, b) => (a.createdAt > b.createdAt ? a : b));
    const afterMs = Math.max(1000, newest.createdAt.getTime() + options.graceMs - now + 1000);
    return {
      action: 'reschedule',
      digest,
      size: blob.size,
      afterMs,
      reason: `linked to ${newest.repository} ${age(now - newest.createdAt.getTime())} ago, within the review delay (an upload awaiting its manifest)`,
    };
  }
  const via = referrers.length > 0 ? 'only manifests deleted before it reference it' : 'no manifest references it';
  const linked = links.length > 0 ? `; its links (${links.map((l) => `${l.repository}, ${age(now - l.createdAt.getTime())} old`).join('; ')}) are past the review delay` : '; no repository links it';
  return { action: 'delete', digest, size: blob.size, reason: `${via}${linked}`, links, afterAssumedDeletes: referrers.length > 0 };
}

/**
 * Claims and reviews the oldest due blob review; resolves with false when none is due. A blob it deletes has its
 * object deleted right after the commit (or later, from its tombstone).
 */
export async function reviewNextBlob(ctx: GcContext): Promise<boolean> {
  const { settings, counters } = ctx;
  let deleted: { digest: string; size: number } | null = null;
  const claimed = await ctx.db.transaction(async (tx) => {
    await meta.setGcTimeouts(tx, settings.lockTimeoutMs, settings.statementTimeoutMs);
    const task = await meta.claimBlobReview(tx);
    if (!task) return false;
    return reviewSpan('blob', task.digest, async () => {
      const target: GcTarget = { kind: 'blob', digest: task.digest };
      await tx.query('SAVEPOINT gc_review');
      try {
        const decision = await decideBlob(tx, task.digest, {
          lock: true,
          graceMs: settings.reviewDelayMs,
          afterLock: ctx.hooks.afterLock ? () => ctx.hooks.afterLock!(target) : undefined,
        });
        if (decision.action === 'reschedule') {
          await meta.rescheduleBlobReview(tx, task.digest, decision.afterMs, false);
          counters.reviews.blob.rescheduled++;
        } else if (decision.action === 'delete') {
          await meta.lockRepositoriesForEvents(tx, decision.links.map((l) => l.repositoryId));
          await meta.deleteBlobMetadata(tx, decision.digest, decision.size);
          // One blob.deleted per repository that loses the blob (events are per repository); a blob no repository
          // links any more (its last link went with a DELETE, which had its own event) goes without one.
          for (const link of decision.links) {
            await appendEvent(tx, ctx.events, {
              type: EVENT_TYPES.blobDeleted,
              repository: link.repository,
              subject: `${link.repository}@${decision.digest}`,
              context: GC_EVENT_CONTEXT,
              data: { digest: decision.digest, size: decision.size, mediaType: 'application/octet-stream' },
            });
          }
          await meta.finishBlobReview(tx, task.digest);
          counters.reviews.blob.deleted++;
          deleted = { digest: decision.digest, size: decision.size };
          ctx.logger.info({ digest: decision.digest, size: decision.size, reason: decision.reason, queued: task.reason }, 'gc: deleted blob metadata');
        } else {
          await meta.finishBlobReview(tx, task.digest);
          counters.reviews.blob[decision.action === 'gone' ? 'gone' : 'kept']++;
          ctx.logger.debug({ digest: task.digest, decision: decision.action, reason: decision.reason }, 'gc: blob kept');
        }
      } catch (err) {
        await putReviewOff(tx, ctx, 'blob', target, err, () => meta.rescheduleBlobReview(tx, task.digest, backoffMs(task.attempts, settings.maxBackoffMs), true));
      }
      return true;
    });
  });
  if (deleted) {
    const { digest } = deleted as { digest: string; size: number };
    counters.deleted.blobs++;
    ctx.onEventsCommitted?.();
    await ctx.hooks.afterMetadataDelete?.({ kind: 'object', digest });
    await deleteObjectOf(ctx, meta.blobTombstoneKey(digest));
  }
  return claimed;
}
