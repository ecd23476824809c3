/**
 * The manifest service's writes as domain operations: push a manifest (with its tags), delete a manifest, delete a
 * tag. Each takes the database and plain values, runs one transaction and returns what changed; none knows HTTP.
 *
 * Invariant (the outbox): every event of a change is appended with `appendEvent` inside the transaction that makes
 * the change, so an event exists exactly when its change committed; a refusal throws inside (or before) the
 * transaction and leaves neither rows nor events. The garbage collector's review queues are written the same way.
 *
 * Invariant (immutable tags, libs/metadata tag-rules.ts): a tag an immutable-tag rule covers, once it exists, never
 * points at another digest and is never deleted. The check is made in the write's transaction after the tag row is
 * changed under its lock (every tag change locks the repository row first, so tag changes of one repository run one
 * at a time), and a refusal throws, rolling the whole write back: of two pushes racing to create the same tag with
 * different digests, the second finds the first's row and is refused.
 */
import { EVENT_TYPES, EventContext, OutboxContext, appendEvent, appendManifestDeletion } from '@lading/events';
import * as meta from '@lading/metadata';
import type { Database, SqlExecutor } from '@lading/metadata';
import { Digest, OciError, digestOf, errors, validateManifest } from '@lading/oci';
import { SPAN_NAMES, withSpan } from '@lading/telemetry';
import { type ConfigReader, describeManifest } from './image-metadata';

/** What the manifest writes need: the database, the outbox's identity and the GC review delay. */
export interface ManifestWriteDeps {
  db: Database;
  events: OutboxContext;
  /** How long an unlinked manifest or blob waits before the garbage collector reviews it. */
  reviewDelayMs: number;
  /** Reads image configs for search's labels and platforms (image-metadata.ts); without it, annotations only. */
  configs?: ConfigReader;
  /** Which namespaces have a quota (libs/runtime quota-coverage-source.ts): pushes no quota covers skip the check. */
  quotas?: meta.QuotaCoverage;
}

/** A manifest PUT, as the handler parsed it. */
export interface ManifestPush {
  repository: string;
  /** The manifest's bytes, exactly as the client sent them (the digest is computed over them). */
  body: Buffer;
  /** The media type the client declared (Content-Type without parameters), if any. */
  contentType: string | undefined;
  /** The digest the client addressed the manifest by (a PUT by digest); null for a PUT by tag. */
  expectedDigest: Digest | null;
  /** The tags to point at the manifest, valid already; the tag of a PUT by tag comes first. */
  tags: string[];
  context: EventContext;
}

/** What a push stored. */
export interface PushedManifest {
  digest: string;
  /** The digest of the manifest's subject, when it has one (answered as `OCI-Subject`). */
  subjectDigest: string | null;
  /** The tags now pointing at the manifest. */
  tags: string[];
}

/** The manifest a tag update points at, as events describe it. */
interface ManifestSummary {
  digest: string;
  mediaType: string;
  size: number;
}

/**
 * Pushes a manifest: validates it, checks its digest against the one the client named, then in one transaction
 * checks that what it references exists (locking it against the garbage collector), stores it, points its tags at
 * it and appends its events (`repository.created`, `manifest.pushed`, `referrer.attached`, `tag.updated`).
 * Throws MANIFEST_INVALID, DIGEST_INVALID or MANIFEST_BLOB_UNKNOWN (then nothing is written).
 *
 * Content entering through a pull-through cache (`context.proxy`, which only the cache's fetches set; a request
 * never can) is the one exception to "what it references exists": such a manifest has been verified against its
 * digest by the cache, and its blobs and child manifests are fetched when a client asks for them, so they are not
 * required here. Its references are recorded all the same (a reference may name a blob not stored:
 * 0011_lazy_references.sql), so a blob the cache fetches later is kept by it like any referenced blob.
 */
/** The counter row a push adds its bytes to: any, so that concurrent pushes spread over them. */
function quotaShard(): number {
  return Math.floor(Math.random() * meta.USAGE_SHARDS);
}

export async function pushManifest(deps: ManifestWriteDeps, push: ManifestPush): Promise<PushedManifest> {
  const { repository, body, tags, context: ctx } = push;
  const { events, reviewDelayMs } = deps;
  const manifest = await withSpan(SPAN_NAMES.manifestValidate, { 'lading.manifest.bytes': body.length }, () => validateManifest(body, push.contentType));
  const digest = digestOf(body, push.expectedDigest?.algorithm ?? 'sha256');
  if (push.expectedDigest && push.expectedDigest.value !== digest) {
    throw errors.digestInvalid('manifest digest does not match the reference', { expected: push.expectedDigest.value, actual: digest });
  }
  const blobDigests = manifest.references.filter((r) => r.kind === 'blob').map((r) => r.descriptor.digest);
  const requiredBlobs = manifest.references.filter((r) => r.kind === 'blob' && r.mustExist).map((r) => r.descriptor.digest);
  const childDigests = manifest.references.filter((r) => r.kind === 'manifest').map((r) => r.descriptor.digest);
  const summary: ManifestSummary = { digest, mediaType: manifest.mediaType, size: body.length };
  // Search's metadata, read before the transaction (see image-metadata.ts; never throws), and only for a manifest the
  // repository does not hold: a re-push of the same manifest (a CI re-run, a re-tag) stores nothing new, and reading
  // its config again would be a storage round trip for nothing. Stored after all (deleted meanwhile), it gets what
  // its annotations say.
  const known = deps.configs !== undefined && (await meta.storedManifestExists(deps.db, repository, digest));
  const searchMetadata = known ? null : await describeManifest(manifest, deps.configs);

  await meta.transactionRetryingDeadlocks(deps.db, async (tx) => {
    const repo = await meta.ensureRepository(tx, repository);
    if (ctx.proxy) {
      // Through the cache: whichever referenced blobs are stored are locked as foreign layers are (below), so the
      // collector does not delete them under the new references; the others are fetched when asked for.
      await meta.lockBlobsIfPresent(tx, blobDigests);
    } else {
      const missingBlobs = await meta.missingRepositoryBlobs(tx, repo.id, requiredBlobs);
      if (missingBlobs.length > 0) throw errors.manifestBlobUnknown(missingBlobs[0]);
      const missingChildren = await meta.missingManifests(tx, repo.id, childDigests);
      if (missingChildren.length > 0) throw errors.manifestBlobUnknown(missingChildren[0]);
      // The required blobs are locked (FOR SHARE) by missingRepositoryBlobs, so that the garbage collector cannot
      // delete them under this manifest, and linked (so present: a link references its blob). The others, foreign
      // layers referenced by URL, are locked too if the registry happens to hold them.
      await meta.lockBlobsIfPresent(tx, blobDigests.filter((d) => !requiredBlobs.includes(d)));
    }
    // The candidates the collector could be deleting (blobs, an index's children) are held above, before the
    // repository, as gc-references.ts expects; the repository now, before the manifest row itself (a re-pushed
    // manifest is locked by insertManifest), as a manifest deletion takes them: the other order deadlocked with it.
    // A new repository's row is this transaction's already.
    if (!repo.created && !(await meta.lockRepositoryForEvents(tx, repo.id))) throw new Error(`repository ${repository} is being deleted`);
    if (repo.created) await appendEvent(tx, events, { type: EVENT_TYPES.repositoryCreated, repository, subject: repository, context: ctx });
    // Quotas: what the cache brings in is not refused (a pull must not fail on it); reconciliation counts it.
    if (!ctx.proxy) await meta.chargeNamespaceQuotas(tx, repository, requiredBlobs, quotaShard(), deps.quotas);
    const inserted = await meta.insertManifest(tx, {
      repositoryId: repo.id,
      digest,
      mediaType: manifest.mediaType,
      artifactType: manifest.artifactType,
      payload: body,
      subjectDigest: manifest.subject?.digest ?? null,
      annotations: manifest.annotations,
      // Foreign layers are referenced by URL, never held: only the blobs the registry holds (or, through the cache,
      // will hold once asked for) are referenced.
      blobDigests: requiredBlobs,
      childDigests,
    });
    if (inserted) {
      await meta.recordImageMetadata(tx, repo.id, digest, searchMetadata ?? (await describeManifest(manifest, undefined)));
      await appendEvent(tx, events, {
        type: EVENT_TYPES.manifestPushed,
        repository,
        subject: `${repository}@${digest}`,
        context: ctx,
        data: {
          ...summary,
          artifactType: manifest.artifactType,
          tag: tags[0] ?? null,
          references: manifest.references.map((r) => ({ mediaType: r.descriptor.mediaType, digest: r.descriptor.digest, size: r.descriptor.size })),
          subject: manifest.subject ? { mediaType: manifest.subject.mediaType, digest: manifest.subject.digest, size: manifest.subject.size } : null,
        },
      });
      if (manifest.subject) {
        await appendEvent(tx, events, {
          type: EVENT_TYPES.referrerAttached,
          repository,
          subject: `${repository}@${manifest.subject.digest}`,
          context: ctx,
          data: { ...summary, artifactType: manifest.artifactType, subject: { mediaType: manifest.subject.mediaType, digest: manifest.subject.digest, size: manifest.subject.size } },
        });
      }
      // An untagged push is reviewed (and, by default, collected). Not what a cache fetched by digest: a client pulled
      // it by that digest (Kubernetes pins images so), and only eviction (`evictAfter`) ends what a cache holds.
      if (tags.length === 0 && !ctx.proxy) await meta.queueManifestReview(tx, repo.id, [digest], 'pushed untagged', reviewDelayMs);
    }
    for (const tag of tags) await pointTag(tx, deps, { repository, repositoryId: repo.id, tag, manifest: summary, context: ctx, repositoryLocked: true });
  });
  return { digest, subjectDigest: manifest.subject?.digest ?? null, tags };
}

/**
 * Points a tag at a manifest in the caller's transaction, with its `tag.updated` event (none when the tag already
 * pointed there); the manifest it pointed at before is queued for review.
 */
async function pointTag(
  tx: SqlExecutor,
  deps: Pick<ManifestWriteDeps, 'events' | 'reviewDelayMs'>,
  change: { repository: string; repositoryId: number; tag: string; manifest: ManifestSummary; context: EventContext; repositoryLocked: boolean },
): Promise<void> {
  const { repository, repositoryId, tag, manifest } = change;
  const { previousDigest, changed } = await meta.upsertTag(tx, repositoryId, tag, manifest.digest, { repositoryLocked: change.repositoryLocked });
  if (!changed) return;
  // A pull-through cache follows its upstream's tags, whatever the rules: immutability governs what clients push.
  if (previousDigest && !change.context.proxy) await refuseImmutableTags(tx, repository, [tag], `move it from ${previousDigest}`);
  await appendEvent(tx, deps.events, {
    type: EVENT_TYPES.tagUpdated,
    repository,
    subject: `${repository}:${tag}`,
    context: change.context,
    data: { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.size, tag, previousDigest },
  });
  if (previousDigest) await meta.queueManifestReview(tx, repositoryId, [previousDigest], 'tag moved', deps.reviewDelayMs);
}

/**
 * Deletes a tag, with its `tag.deleted` event, and queues the manifest it pointed at for review; resolves with that
 * manifest's digest. Throws MANIFEST_UNKNOWN when the repository or the tag does not exist.
 */
export async function removeTag(deps: ManifestWriteDeps, target: { repository: string; tag: string; context: EventContext }): Promise<{ digest: string }> {
  const { repository, tag } = target;
  return meta.transactionRetryingDeadlocks(deps.db, async (tx) => {
    const repo = await meta.findRepository(tx, repository);
    if (!repo) throw errors.manifestUnknown(tag);
    const digest = await meta.deleteTag(tx, repo.id, tag);
    if (!digest) throw errors.manifestUnknown(tag);
    await refuseImmutableTags(tx, repository, [tag], 'delete it');
    await appendEvent(tx, deps.events, { type: EVENT_TYPES.tagDeleted, repository, subject: `${repository}:${tag}`, context: target.context, data: { tag, digest } });
    await meta.queueManifestReview(tx, repo.id, [digest], 'tag deleted', deps.reviewDelayMs);
    return { digest };
  });
}

/**
 * Deletes a manifest by digest with the tags that pointed at it: a `tag.deleted` event per tag, then
 * `manifest.deleted`; the blobs and index children it referenced are queued for review. Throws MANIFEST_UNKNOWN
 * when the repository or the manifest does not exist.
 */
export async function removeManifest(deps: ManifestWriteDeps, target: { repository: string; digest: string; context: EventContext }): Promise<meta.DeletedManifest> {
  const { repository, context: ctx } = target;
  return meta.transactionRetryingDeadlocks(deps.db, async (tx) => {
    const repo = await meta.findRepository(tx, repository);
    if (!repo) throw errors.manifestUnknown(target.digest);
    const deleted = await meta.deleteManifest(tx, repo.id, target.digest);
    if (!deleted) throw errors.manifestUnknown(target.digest);
    await refuseImmutableTags(tx, repository, deleted.tags, `delete manifest ${target.digest}, which it points at`);
    await appendManifestDeletion(tx, deps.events, repository, deleted, ctx);
    await meta.queueBlobReview(tx, deleted.blobDigests, 'manifest deleted', deps.reviewDelayMs);
    await meta.queueManifestReview(tx, repo.id, deleted.childDigests, 'parent index deleted', deps.reviewDelayMs);
    return deleted;
  });
}

/**
 * Throws DENIED, naming the rule, when an immutable-tag rule covers one of `tags` of `repository`; called in the
 * transaction of a change that would move or delete them (which the throw rolls back). `attempt` says what was refused.
 */
async function refuseImmutableTags(tx: SqlExecutor, repository: string, tags: readonly string[], attempt: string): Promise<void> {
  if (tags.length === 0) return;
  const rules = await meta.tagRulesFor(tx, repository);
  for (const tag of tags) {
    const rule = meta.immutableTagRule(rules, tag);
    if (!rule) continue;
    throw new OciError(
      'DENIED',
      `tag ${tag} of ${repository} is immutable (rule '${rule.pattern}' of namespace '${rule.namespace}'): cannot ${attempt}`,
      { repository, tag, namespace: rule.namespace, rule: rule.pattern },
    );
  }
}
