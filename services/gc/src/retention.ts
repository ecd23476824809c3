/**
 * Retention rules and the periodic sweep. A rule of a namespace removes tags: with `keepLast` N, those beyond the
 * newest N of each repository; with `olderThan`, those not pushed for that long; with both, only tags that are
 * both. A removed tag is deleted the way a tag DELETE is (its event, a review of its manifest in the same
 * transaction); the manifest then goes through the ordinary review. A dry-run rule only reports.
 */
import { appendEvent, EVENT_TYPES } from '@lading/events';
import * as meta from '@lading/metadata';
import type { AgedTag, SqlExecutor } from '@lading/metadata';
import { evictStaleProxyContent } from './eviction';
import { GC_EVENT_CONTEXT, GcContext, lockConflict } from './gc-context';
import { GcPolicy, GcSettings, hasRetention, policyFor } from './gc-settings';

/** A tag a retention rule removes. */
export interface RetentionCandidate {
  repositoryId: number;
  repository: string;
  tag: AgedTag;
  policy: GcPolicy;
  /** The rule, in words. */
  reason: string;
}

function describeRule(policy: GcPolicy, rank: number): string {
  const parts: string[] = [];
  if (policy.keepLast !== null) parts.push(`not among the newest ${policy.keepLast} (it is #${rank + 1})`);
  if (policy.olderThanMs !== null) parts.push(`not pushed for over ${Math.round(policy.olderThanMs / 1000)}s`);
  return `retention of namespace '${policy.namespace}': ${parts.join(' and ')}${policy.dryRun ? ' (dry-run policy)' : ''}`;
}

/** The tags every retention rule would remove now. */
export async function retentionCandidates(db: SqlExecutor, settings: GcSettings, now = Date.now()): Promise<RetentionCandidate[]> {
  const out: RetentionCandidate[] = [];
  for (const policy of settings.policies.filter(hasRetention)) {
    for (const repo of await meta.repositoriesInNamespace(db, policy.namespace)) {
      // A repository follows its most specific namespace's policy only.
      if (policyFor(settings, repo.name) !== policy) continue;
      const tags = (await meta.tagsByAge(db, repo.id)).filter((t) => !policy.tagPattern || policy.tagPattern.test(t.name));
      tags.forEach((tag, rank) => {
        const beyondKeep = policy.keepLast === null || rank >= policy.keepLast;
        const old = policy.olderThanMs === null || now - tag.updatedAt.getTime() >= policy.olderThanMs;
        if (beyondKeep && old) out.push({ repositoryId: repo.id, repository: repo.name, tag, policy, reason: describeRule(policy, rank) });
      });
    }
  }
  return out;
}

/** Applies the retention rules once; resolves with how many tags it removed. */
export async function applyRetention(ctx: GcContext): Promise<number> {
  const { settings, counters } = ctx;
  let removed = 0;
  for (const c of await retentionCandidates(ctx.db, settings)) {
    if (c.policy.dryRun) {
      counters.retentionReported++;
      ctx.logger.info({ repository: c.repository, tag: c.tag.name, digest: c.tag.digest, reason: c.reason }, 'gc: retention would delete this tag (dry run)');
      continue;
    }
    try {
      const done = await ctx.db.transaction(async (tx) => {
        await meta.setGcTimeouts(tx, settings.lockTimeoutMs, settings.statementTimeoutMs);
        await meta.lockRepositoriesForEvents(tx, [c.repositoryId]);
        if (!(await meta.deleteTagIfUnchanged(tx, c.repositoryId, c.tag))) return false;
        await appendEvent(tx, ctx.events, {
          type: EVENT_TYPES.tagDeleted,
          repository: c.repository,
          subject: `${c.repository}:${c.tag.name}`,
          context: GC_EVENT_CONTEXT,
          data: { tag: c.tag.name, digest: c.tag.digest },
        });
        await meta.queueManifestReview(tx, c.repositoryId, [c.tag.digest], 'tag deleted by retention', settings.reviewDelayMs);
        return true;
      });
      if (done) {
        removed++;
        counters.deleted.tags++;
        ctx.logger.info({ repository: c.repository, tag: c.tag.name, reason: c.reason }, 'gc: retention deleted a tag');
      }
    } catch (err) {
      // A tag being pushed right now is simply left for the next run.
      if (!lockConflict(err)) throw err;
      counters.postponed.busy++;
    }
  }
  if (removed > 0) ctx.onEventsCommitted?.();
  return removed;
}

/** The periodic sweep: retention rules, eviction of pull-through caches, referrers orphaned without a review, and stale pins. */
export async function sweep(ctx: GcContext): Promise<{ tagsRemoved: number; manifestsEvicted: number; referrersQueued: number; stalePins: number }> {
  const tagsRemoved = await applyRetention(ctx);
  const manifestsEvicted = await evictStaleProxyContent(ctx);
  const referrersQueued = await meta.queueOrphanedReferrers(ctx.db, ctx.settings.reviewDelayMs, 10_000);
  const stalePins = await meta.deleteStalePins(ctx.db, ctx.settings.pinTtlMs);
  if (referrersQueued > 0 || stalePins > 0) ctx.logger.info({ referrersQueued, stalePins }, 'gc: sweep');
  return { tagsRemoved, manifestsEvicted, referrersQueued, stalePins };
}
