/**
 * Eviction of pull-through caches: in a proxy namespace with `evictAfter`, a manifest last pulled (or, never pulled,
 * fetched) longer ago than that is deleted the way an API delete deletes it: its tags and itself, with their events,
 * and reviews of its blobs and children queued in the same transaction, so its blobs become garbage and go through
 * the ordinary reviews. Only proxy namespaces are ever evicted (the rules come from `proxies` and the stored rules, nothing else). An
 * evicted image is fetched from the upstream again on its next pull.
 *
 * Invariant: a manifest is deleted only if it is still stale once locked, so a pull recorded after the candidates
 * were listed saves it. (Pulls not yet flushed cannot: the flush interval is seconds, eviction counts in days.)
 */
import { appendManifestDeletion } from '@lading/events';
import * as meta from '@lading/metadata';
import { GC_EVENT_CONTEXT, GcContext, lockConflict } from './gc-context';

/** The most manifests evicted per namespace in one sweep (the next sweep goes on). */
const EVICTION_BATCH = 1000;

/** Evicts stale content of every pull-through cache with `evictAfter`; resolves with how many manifests it deleted. */
export async function evictStaleProxyContent(ctx: GcContext, now = Date.now()): Promise<number> {
  const { settings, counters } = ctx;
  let evicted = 0;
  for (const rule of ctx.evictions?.() ?? settings.evictions) {
    const cutoff = now - rule.afterMs;
    for (const stale of await meta.staleManifests(ctx.db, rule.namespace, cutoff, EVICTION_BATCH)) {
      try {
        const deleted = await ctx.db.transaction(async (tx) => {
          await meta.setGcTimeouts(tx, settings.lockTimeoutMs, settings.statementTimeoutMs);
          await meta.lockRepositoriesForEvents(tx, [stale.repositoryId]);
          if (!(await meta.lockIfStale(tx, stale.repositoryId, stale.digest, cutoff))) return null;
          const gone = await meta.deleteManifest(tx, stale.repositoryId, stale.digest);
          if (!gone) return null;
          await appendManifestDeletion(tx, ctx.events, stale.repository, gone, GC_EVENT_CONTEXT);
          await meta.queueBlobReview(tx, gone.blobDigests, 'manifest evicted from a pull-through cache', settings.reviewDelayMs);
          await meta.queueManifestReview(tx, stale.repositoryId, gone.childDigests, 'parent index evicted from a pull-through cache', settings.reviewDelayMs);
          await meta.queueManifestReview(tx, stale.repositoryId, await meta.referrersOf(tx, stale.repositoryId, gone.digest), 'subject evicted from a pull-through cache', settings.reviewDelayMs);
          return gone;
        });
        if (deleted) {
          evicted++;
          counters.deleted.manifests++;
          counters.deleted.tags += deleted.tags.length;
          ctx.logger.info({ repository: stale.repository, digest: stale.digest, tags: deleted.tags, evictAfterMs: rule.afterMs }, 'gc: evicted a manifest not pulled for evictAfter');
        }
      } catch (err) {
        // A manifest being pulled through or deleted right now is left for the next sweep.
        if (!lockConflict(err)) throw err;
        counters.postponed.busy++;
      }
    }
  }
  if (evicted > 0) ctx.onEventsCommitted?.();
  return evicted;
}
