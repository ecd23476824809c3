/**
 * Retention rules and the periodic sweep. A rule of a namespace removes tags: with `keepLast` N, those beyond the
 * newest N of each repository; with `olderThan`, those not pushed for that long; with `notPulledFor`, those whose
 * image has not been pulled for that long (by the batched last-pulled times, 0007_last_pulled.sql; counted from the
 * tag's push when that is later); with several, only tags that are all. `notPulledFor` also sends untagged
 * manifests not pulled for that long to review. A removed tag is deleted the way a tag DELETE is (its event, a review of its manifest in the same
 * transaction); the manifest then goes through the ordinary review. A dry-run rule only reports.
 */
import { appendEvent, EVENT_TYPES } from '@lading/events';
import * as meta from '@lading/metadata';
import type { AgedTag, SqlExecutor } from '@lading/metadata';
import { evictStaleProxyContent } from './eviction';
import { GC_EVENT_CONTEXT, GcContext, lockConflict } from './gc-context';
import { GcPolicy, GcSettings, describeDuration, hasRetention, policyFor } from './gc-settings';

/** A tag a retention rule removes. */
export interface RetentionCandidate {
  repositoryId: number;
  repository: string;
  tag: AgedTag;
  policy: GcPolicy;
  /** The rule, in words. */
  reason: string;
}

/** An untagged manifest retention by pulls (`notPulledFor`) sends to review. */
export interface UnpulledCandidate {
  repositoryId: number;
  repository: string;
  digest: string;
  policy: GcPolicy;
  /** The rule and the last pull, in words. */
  reason: string;
}

/** The most untagged manifests one sweep queues per policy (the next sweep goes on). */
const UNPULLED_BATCH = 1000;

/** When something was last pulled, in words: the pull's time, or that it never was (since when it counts). */
function lastPull(lastPulledAt: Date | null, since: Date): string {
  return lastPulledAt ? `last pulled ${lastPulledAt.toISOString()}` : `never pulled, pushed ${since.toISOString()}`;
}

function describeRule(policy: GcPolicy, rank: number, tag: AgedTag): string {
  const parts: string[] = [];
  if (policy.keepLast !== null) parts.push(`not among the newest ${policy.keepLast} (it is #${rank + 1})`);
  if (policy.olderThanMs !== null) parts.push(`not pushed for over ${Math.round(policy.olderThanMs / 1000)}s`);
  if (policy.notPulledForMs !== null) parts.push(`not pulled for ${describeDuration(policy.notPulledForMs)} (${lastPull(tag.lastPulledAt, tag.updatedAt)})`);
  return `retention of namespace '${policy.namespace}': ${parts.join(' and ')}${policy.dryRun ? ' (dry-run policy)' : ''}`;
}

/** When a tag was last used: its manifest's last pull, or its own last push when that is later. */
function lastUse(tag: AgedTag): number {
  return Math.max(tag.updatedAt.getTime(), tag.lastPulledAt?.getTime() ?? 0);
}

/**
 * The tags every retention rule would remove now. Tags an immutable-tag rule covers are never removed: immutability
 * (libs/metadata tag-rules.ts) holds against retention too.
 */
export async function retentionCandidates(db: SqlExecutor, settings: GcSettings, now = Date.now()): Promise<RetentionCandidate[]> {
  const out: RetentionCandidate[] = [];
  for (const policy of settings.policies.filter(hasRetention)) {
    for (const repo of await meta.repositoriesInNamespace(db, policy.namespace)) {
      // A repository follows its most specific namespace's policy only.
      if (policyFor(settings, repo.name) !== policy) continue;
      const rules = await meta.tagRulesFor(db, repo.name, false);
      const tags = (await meta.tagsByAge(db, repo.id)).filter((t) => !policy.tagPattern || policy.tagPattern.test(t.name));
      tags.forEach((tag, rank) => {
        const beyondKeep = policy.keepLast === null || rank >= policy.keepLast;
        const old = policy.olderThanMs === null || now - tag.updatedAt.getTime() >= policy.olderThanMs;
        const unpulled = policy.notPulledForMs === null || now - lastUse(tag) >= policy.notPulledForMs;
        if (beyondKeep && old && unpulled && !meta.immutableTagRule(rules, tag.name)) {
          out.push({ repositoryId: repo.id, repository: repo.name, tag, policy, reason: describeRule(policy, rank, tag) });
        }
      });
    }
  }
  return out;
}

/** The untagged manifests that retention by pulls (`notPulledFor`) would send to review now, with why. */
export async function unpulledCandidates(db: SqlExecutor, settings: GcSettings, now = Date.now()): Promise<UnpulledCandidate[]> {
  const out: UnpulledCandidate[] = [];
  for (const policy of settings.policies) {
    if (policy.notPulledForMs === null || !policy.deleteUntagged) continue;
    for (const m of await meta.untaggedManifestsNotPulledSince(db, policy.namespace, now - policy.notPulledForMs, UNPULLED_BATCH)) {
      if (policyFor(settings, m.repository) !== policy) continue;
      const reason = `retention of namespace '${policy.namespace}': untagged and not pulled for ${describeDuration(policy.notPulledForMs)} (${lastPull(m.lastPulledAt, m.createdAt)})${policy.dryRun ? ' (dry-run policy)' : ''}`;
      out.push({ repositoryId: m.repositoryId, repository: m.repository, digest: m.digest, policy, reason });
    }
  }
  return out;
}

/**
 * Queues for review the untagged manifests retention by pulls lets go (a dry-run policy only reports them); the
 * review deletes them (manifest-review.ts keeps one pulled since). Resolves with how many it queued.
 */
export async function queueUnpulledManifests(ctx: GcContext, now = Date.now()): Promise<number> {
  let queued = 0;
  for (const c of await unpulledCandidates(ctx.db, ctx.settings, now)) {
    if (c.policy.dryRun) {
      ctx.counters.retentionReported++;
      ctx.logger.info({ repository: c.repository, digest: c.digest, reason: c.reason }, 'gc: retention would delete this untagged manifest (dry run)');
      continue;
    }
    await meta.queueManifestReview(ctx.db, c.repositoryId, [c.digest], c.reason, 0);
    queued++;
  }
  if (queued > 0) ctx.logger.info({ queued }, 'gc: retention by pulls queued untagged manifests for review');
  return queued;
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
        // A repository being deleted is left to its deletion's batches.
        if (!(await meta.lockRepositoriesForEvents(tx, [c.repositoryId])).has(c.repositoryId)) return false;
        const notPulledSince = c.policy.notPulledForMs === null ? null : Date.now() - c.policy.notPulledForMs;
        if (!(await meta.deleteTagIfUnchanged(tx, c.repositoryId, c.tag, notPulledSince))) return false;
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
export async function sweep(ctx: GcContext): Promise<{ tagsRemoved: number; unpulledQueued: number; manifestsEvicted: number; referrersQueued: number; stalePins: number }> {
  const tagsRemoved = await applyRetention(ctx);
  const unpulledQueued = await queueUnpulledManifests(ctx);
  const manifestsEvicted = await evictStaleProxyContent(ctx);
  const referrersQueued = await meta.queueOrphanedReferrers(ctx.db, ctx.settings.reviewDelayMs, 10_000);
  const stalePins = await meta.deleteStalePins(ctx.db, ctx.settings.pinTtlMs);
  if (referrersQueued > 0 || stalePins > 0) ctx.logger.info({ referrersQueued, stalePins }, 'gc: sweep');
  return { tagsRemoved, unpulledQueued, manifestsEvicted, referrersQueued, stalePins };
}
