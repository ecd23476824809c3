/**
 * Deleting a repository as a domain operation: in one transaction, its tags, manifests, blob links and upload
 * sessions go, its `repository.deleted` event is appended, and every blob it linked or referenced is queued for the
 * collector's review (which deletes what no other repository references). Knows nothing of HTTP.
 *
 * Immutable tags (tag-rules.ts) protect a repository too: one that holds a tag an immutable-tag rule covers is
 * deleted only when the caller says `force` (the admin API's `?force=true`), because deleting the repository deletes
 * the tag. A pull-through cache's repository may be deleted like any other: that evicts what the cache holds, and
 * the next pull fetches it again.
 */
import { EVENT_TYPES, EventContext, appendEvent } from '@lading/events';
import * as meta from '@lading/metadata';
import { OciError, errors } from '@lading/oci';
import type { ManifestWriteDeps } from './manifest-writes';

/** A repository deletion, as the admin API parsed it. */
export interface RepositoryDeletion {
  repository: string;
  /** Delete it even when it holds immutable tags. */
  force: boolean;
  context: EventContext;
}

/** What a repository deletion removed. */
export interface DeletedRepositorySummary {
  repository: string;
  tags: number;
  manifests: number;
  /** Blobs queued for the collector's review (it deletes those nothing else references). */
  blobsQueued: number;
  /** Upload sessions ended (their data is deleted by the collector). */
  uploads: number;
}

/** How many times a deletion that deadlocked with a concurrent write is tried again before the error is answered. */
const DEADLOCK_RETRIES = 3;

/**
 * Deletes a repository with everything that is its own, its `repository.deleted` event and the review of its blobs,
 * in one transaction. Throws NAME_UNKNOWN when there is no such repository, and DENIED (naming the rule) when it
 * holds an immutable tag and `force` is not set; then nothing changes.
 */
export async function removeRepository(deps: Pick<ManifestWriteDeps, 'db' | 'events' | 'reviewDelayMs'>, deletion: RepositoryDeletion): Promise<DeletedRepositorySummary> {
  const { repository } = deletion;
  for (let attempt = 0; ; attempt++) {
    try {
      return await deps.db.transaction(async (tx) => {
        const contents = await meta.lockRepositoryForDeletion(tx, repository);
        if (!contents) throw errors.nameUnknown(repository);
        if (!deletion.force) {
          const rules = await meta.tagRulesFor(tx, repository);
          for (const tag of contents.tags) {
            const rule = meta.immutableTagRule(rules, tag);
            if (rule) {
              throw new OciError(
                'DENIED',
                `repository ${repository} holds immutable tag ${tag} (rule '${rule.pattern}' of namespace '${rule.namespace}'): delete it with force=true`,
                { repository, tag, namespace: rule.namespace, rule: rule.pattern },
              );
            }
          }
        }
        // The event first: it takes the repository's next sequence number from the row about to be deleted.
        await appendEvent(tx, deps.events, { type: EVENT_TYPES.repositoryDeleted, repository, subject: repository, context: deletion.context });
        const uploads = await meta.deleteRepository(tx, contents.id);
        await meta.queueBlobReview(tx, contents.blobDigests, 'repository deleted', deps.reviewDelayMs);
        return { repository, tags: contents.tags.length, manifests: contents.manifests, blobsQueued: contents.blobDigests.length, uploads: uploads.length };
      });
    } catch (err) {
      // Every write takes the repository row before the rows this cascades to (ensureRepository, the tag changes,
      // deleteManifest, removeBlob), so none should deadlock with it; should one still (a path taking a row first),
      // Postgres ends one of the two, and if that is the deletion it simply runs again.
      if (meta.sqlState(err) !== meta.PG_ERRORS.deadlockDetected || attempt >= DEADLOCK_RETRIES) throw err;
    }
  }
}
