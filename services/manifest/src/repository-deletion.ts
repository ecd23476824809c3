/**
 * Deleting a repository as a domain operation, the same in both modes (the embedded admin API calls it, and so does
 * the manifest service's internal route the distributed admin API forwards to). In a first, short transaction the
 * repository is locked, its immutable tags checked, its `repository.deleted` event appended, its upload sessions
 * ended, and it is taken out of sight (libs/metadata repository-deletions.ts: renamed to a tombstone, with a job row).
 * Its manifests and blob links then go in bounded batches, each its own transaction, queueing the blobs they free
 * for the collector's review: the request runs `gc.repositoryDeletionInlineBatches` of them and answers `200` when
 * they finished the job, else `202` with `pending: true`; the collector (any process) runs the rest, after a restart
 * too. Knows nothing of HTTP.
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
  /**
   * True when the answer came before the batches finished (the `202`): the repository is gone from every read and
   * listing, and the collector deletes the rest; `blobsQueued` counts what was queued so far.
   */
  pending?: true;
}

/** How a deletion runs its batches (`gc.repositoryDeletionBatch`, `gc.repositoryDeletionInlineBatches`). */
export interface RepositoryDeletionBatches {
  batchSize: number;
  /** Batches run before answering; the collector runs the rest. */
  inline: number;
}

/**
 * Deletes a repository with everything that is its own (see the top of this file). Throws NAME_UNKNOWN when there is
 * no such repository, and DENIED (naming the rule) when it holds an immutable tag and `force` is not set; then
 * nothing changes.
 */
export async function removeRepository(
  deps: Pick<ManifestWriteDeps, 'db' | 'events' | 'reviewDelayMs'>,
  deletion: RepositoryDeletion,
  batches: RepositoryDeletionBatches,
  /** Told when the first transaction committed (the repository is out of sight), before any batch runs. */
  onDetached?: () => void,
): Promise<DeletedRepositorySummary> {
  const detached = await detach(deps, deletion);
  onDetached?.();
  const summary: DeletedRepositorySummary = { repository: deletion.repository, tags: detached.tags, manifests: detached.manifests, blobsQueued: 0, uploads: detached.uploads };
  for (let n = 0; n < batches.inline; n++) {
    const progress = await meta.continueRepositoryDeletion(deps.db, { repositoryId: detached.id, batchSize: batches.batchSize, reviewDelayMs: deps.reviewDelayMs });
    // Null: the collector holds the job (or just finished it); it finishes what is left.
    if (!progress) break;
    summary.blobsQueued = progress.blobsQueued;
    if (progress.finished) return summary;
  }
  return { ...summary, pending: true };
}

/** The first transaction of a deletion: checks, the event, the uploads, and the tombstone with its job row. */
async function detach(deps: Pick<ManifestWriteDeps, 'db' | 'events'>, deletion: RepositoryDeletion): Promise<{ id: number; tags: number; manifests: number; uploads: number }> {
  const { repository } = deletion;
  // Every write takes the repository row before the rows this cascades to (ensureRepository, the tag changes,
  // deleteManifest, removeBlob), so none should deadlock with it; should one still (a path taking a row first),
  // Postgres ends one of the two, and if that is the deletion it simply runs again.
  return meta.transactionRetryingDeadlocks(deps.db, async (tx) => {
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
    // The event first: it takes the repository's next sequence number from the row, found by its name.
    await appendEvent(tx, deps.events, { type: EVENT_TYPES.repositoryDeleted, repository, subject: repository, context: deletion.context });
    const uploads = await meta.detachRepositoryForDeletion(tx, { id: contents.id, name: repository, tags: contents.tags.length, manifests: contents.manifests });
    return { id: contents.id, tags: contents.tags.length, manifests: contents.manifests, uploads: uploads.length };
  });
}
