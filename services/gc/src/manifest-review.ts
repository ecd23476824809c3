/**
 * Manifest reviews. A manifest is deleted when no tag points at it, no index of its repository lists it, it is
 * not a referrer of a subject that exists (referrers of a live subject are kept with it; referrers whose subject
 * is gone go), its namespace's policy deletes untagged manifests (the default; with `notPulledFor`, only once not
 * pulled for that long), and its payload parses (content
 * the collector cannot read is kept). Deleting it queues, in the same transaction, reviews of its blobs, of its
 * children (an index) and of its referrers (a subject).
 */
import { appendEvent, EVENT_TYPES } from '@lading/events';
import * as meta from '@lading/metadata';
import type { SqlExecutor } from '@lading/metadata';
import { validateManifest } from '@lading/oci';
import { manifestKey } from './blob-review';
import { GC_EVENT_CONTEXT, GcContext, GcTarget, putReviewOff, reviewSpan } from './gc-context';
import { GcSettings, backoffMs, describeDuration, policyFor } from './gc-settings';

/** What a manifest review decides. */
export type ManifestDecision =
  | { action: 'gone'; reason: string }
  | { action: 'keep'; reason: string; row: meta.GcManifestRow; unparseable?: boolean }
  | { action: 'delete'; reason: string; row: meta.GcManifestRow; blobs: string[]; children: string[] };

/** How a manifest is looked at (see BlobLookOptions). */
export interface ManifestLookOptions {
  lock: boolean;
  settings: GcSettings;
  assumeDeleted?: ReadonlySet<string>;
  afterLock?: () => Promise<void>;
  /** The clock, in epoch milliseconds (retention by pulls); `Date.now()` when omitted. */
  now?: number;
}

/** Decides a manifest's fate from its tags, parent indexes, subject, policy and payload. */
export async function decideManifest(tx: SqlExecutor, repositoryId: number, digest: string, options: ManifestLookOptions): Promise<ManifestDecision> {
  const row = await meta.readManifestForCollection(tx, repositoryId, digest, options.lock);
  if (!row) return { action: 'gone', reason: 'no manifest row (already deleted)' };
  await options.afterLock?.();
  const assumed = options.assumeDeleted ?? new Set<string>();
  const tags = await meta.tagsOfManifest(tx, repositoryId, digest, 1);
  if (tags.length > 0) return { action: 'keep', reason: `tagged ${tags[0]}`, row };
  const parents = (await meta.parentIndexes(tx, repositoryId, digest, assumed.size > 0 ? 1000 : 1)).filter((p) => !assumed.has(manifestKey(repositoryId, p)));
  if (parents.length > 0) return { action: 'keep', reason: `listed by index ${parents[0]}`, row };
  let subjectGone = '';
  if (row.subjectDigest) {
    const subjectLive = !assumed.has(manifestKey(repositoryId, row.subjectDigest)) && (await meta.manifestExists(tx, repositoryId, row.subjectDigest));
    if (subjectLive) return { action: 'keep', reason: `referrer of ${row.subjectDigest}, which exists`, row };
    subjectGone = `, its subject ${row.subjectDigest} is gone`;
  }
  const policy = policyFor(options.settings, row.repository);
  if (!policy.deleteUntagged) return { action: 'keep', reason: `untagged, but namespace '${policy.namespace}' keeps untagged manifests`, row };
  if (policy.notPulledForMs !== null) {
    // Retention by pulls: an untagged manifest goes only once it has not been pulled (or, never pulled, not pushed)
    // for notPulledFor; the sweep queues it again then (retention.ts).
    const lastUse = row.lastPulledAt ?? row.createdAt;
    if ((options.now ?? Date.now()) - lastUse.getTime() < policy.notPulledForMs) {
      const when = row.lastPulledAt ? `pulled ${row.lastPulledAt.toISOString()}` : `pushed ${row.createdAt.toISOString()} and never pulled`;
      return { action: 'keep', reason: `untagged, but ${when}, within notPulledFor ${describeDuration(policy.notPulledForMs)} of namespace '${policy.namespace}'`, row };
    }
  }
  let references;
  try {
    references = validateManifest(row.payload, row.mediaType).references;
  } catch (err) {
    return { action: 'keep', reason: `untagged, but its payload cannot be parsed (${(err as Error).message})`, row, unparseable: true };
  }
  return {
    action: 'delete',
    reason: `untagged${subjectGone}, and no index lists it`,
    row,
    blobs: references.filter((r) => r.kind === 'blob').map((r) => r.descriptor.digest),
    children: references.filter((r) => r.kind === 'manifest').map((r) => r.descriptor.digest),
  };
}

/** Claims and reviews the oldest due manifest review; resolves with false when none is due. */
export async function reviewNextManifest(ctx: GcContext): Promise<boolean> {
  const { settings, counters } = ctx;
  let eventsWritten = false;
  const claimed = await ctx.db.transaction(async (tx) => {
    await meta.setGcTimeouts(tx, settings.lockTimeoutMs, settings.statementTimeoutMs);
    const task = await meta.claimManifestReview(tx);
    if (!task) return false;
    return reviewSpan('manifest', task.digest, async () => {
      const target: GcTarget = { kind: 'manifest', repositoryId: task.repositoryId, digest: task.digest };
      await tx.query('SAVEPOINT gc_review');
      try {
        const decision = await decideManifest(tx, task.repositoryId, task.digest, {
          lock: true,
          settings,
          afterLock: ctx.hooks.afterLock ? () => ctx.hooks.afterLock!(target) : undefined,
        });
        // A repository a deletion took out of sight is its batches' to empty: the review has nothing left to do.
        const deleting = decision.action === 'delete' && !(await meta.lockRepositoriesForEvents(tx, [decision.row.repositoryId])).has(decision.row.repositoryId);
        if (decision.action === 'delete' && !deleting) {
          const { row } = decision;
          const referrers = await meta.referrersOf(tx, row.repositoryId, row.digest);
          const deleted = await meta.deleteManifest(tx, row.repositoryId, row.digest);
          if (!deleted) throw new Error(`manifest ${row.repository}@${row.digest} vanished while locked`);
          await appendEvent(tx, ctx.events, {
            type: EVENT_TYPES.manifestDeleted,
            repository: row.repository,
            subject: `${row.repository}@${row.digest}`,
            context: GC_EVENT_CONTEXT,
            data: { digest: row.digest, mediaType: row.mediaType, size: row.size },
          });
          const delay = settings.reviewDelayMs;
          await meta.queueBlobReview(tx, [...deleted.blobDigests, ...decision.blobs], 'manifest deleted by gc', delay);
          await meta.queueManifestReview(tx, row.repositoryId, [...deleted.childDigests, ...decision.children], 'parent index deleted by gc', delay);
          await meta.queueManifestReview(tx, row.repositoryId, referrers, 'subject deleted by gc', delay);
          await meta.finishManifestReview(tx, task.repositoryId, task.digest);
          counters.reviews.manifest.deleted++;
          counters.deleted.manifests++;
          eventsWritten = true;
          ctx.logger.info({ repository: row.repository, digest: row.digest, reason: decision.reason, queued: task.reason }, 'gc: deleted manifest');
        } else {
          await meta.finishManifestReview(tx, task.repositoryId, task.digest);
          if (decision.action === 'keep' && decision.unparseable) {
            counters.unparseable++;
            ctx.logger.warn({ repository: decision.row.repository, digest: task.digest, reason: decision.reason }, 'gc: kept a manifest it cannot parse');
          }
          counters.reviews.manifest[decision.action === 'gone' || deleting ? 'gone' : 'kept']++;
        }
      } catch (err) {
        await putReviewOff(tx, ctx, 'manifest', target, err, () => meta.rescheduleManifestReview(tx, task.repositoryId, task.digest, backoffMs(task.attempts, settings.maxBackoffMs), true));
      }
      return true;
    });
  });
  if (eventsWritten) ctx.onEventsCommitted?.();
  return claimed;
}
