/**
 * The blob service's writes as domain operations: store a whole blob sent in one request, commit an upload's bytes
 * as a blob, mount a blob from another repository, delete a blob from a repository. Each takes its dependencies
 * and plain values (a body is a stream) and returns what changed; none knows HTTP.
 *
 * Invariant (the outbox): every event of a change is appended with `appendEvent` inside the transaction that makes
 * the change, so an event exists exactly when its change committed; a refusal leaves neither rows nor events.
 */
import { randomUUID } from 'node:crypto';
import { type Readable, finished } from 'node:stream';
import { EVENT_TYPES, EventContext, OutboxContext, appendEvent } from '@lading/events';
import * as meta from '@lading/metadata';
import type { Database, SqlExecutor } from '@lading/metadata';
import { Digest, errors } from '@lading/oci';
import { BlobStore, PendingObject, blobKey, canWriteDirect } from '@lading/storage';
import { SPAN_NAMES, withSpan } from '@lading/telemetry';
import { DigestingStream, createNativeDigester } from './digester';

/** What the blob writes need: the database, the object store, the outbox's identity and the GC review delay. */
export interface BlobWriteDeps {
  db: Database;
  store: BlobStore;
  events: OutboxContext;
  /** How long an unreferenced blob waits before the garbage collector reviews it. */
  reviewDelayMs: number;
  /** Which namespaces have a quota (libs/runtime quota-coverage-source.ts): commits no quota covers skip the check. */
  quotas?: meta.QuotaCoverage;
}

/** A blob's bytes stored under its digest. */
export interface StoredBlob {
  digest: string;
  size: number;
}

/**
 * The body piped through `sink`. A client that goes away mid-body fails the sink (`pipe` alone would leave it
 * waiting forever for the rest, and an upload's lease renewed for good).
 */
export function bodyThrough(body: Readable, sink: DigestingStream): Readable {
  // Whoever reads the sink sees the failure (reads of a destroyed stream fail); this listener only keeps a failure
  // that comes while nobody is reading from being thrown as an unhandled 'error' event.
  sink.on('error', () => undefined);
  finished(body, (err) => {
    if (err) sink.destroy(err);
  });
  return body.pipe(sink);
}

/**
 * Finishes hashing an upload's bytes (streamed through the digester while they were written) in a `digest.compute`
 * span, so a trace shows the verification of what the client claimed.
 */
export function digestSpan<T>(algorithm: string, bytes: number, digest: () => T): Promise<T> {
  return withSpan(SPAN_NAMES.digestCompute, { 'lading.digest.algorithm': algorithm, 'lading.digest.bytes': bytes }, digest);
}

/** An upload session's write lease, taken with the blob's pin; `refused` is the error when another writer holds it. */
export interface CommitClaim extends meta.PinClaim {
  refused: () => Error;
}

/**
 * Commits an upload's bytes as the blob's object, pinning the digest first: the garbage collector then cannot
 * delete an object that this commit found already stored before recordBlob records it (gc-tombstones.ts).
 * `claim` (the upload session's write lease) is taken in the pin's statement, and `prepare` (a quota check) runs in
 * the pin's transaction, so that both commit with the pin, before the object moves; a refused claim or a `prepare`
 * that throws leaves nothing. Without `prepare` the claim and the pin are one autocommitted statement. Resolves
 * with the pin, which recordBlob drops. `object.pending`, the bytes written straight to the blob's key
 * (`DirectWriteStore.writeObject`), is committed in place of the upload's.
 */
export async function commitBlobObject(
  deps: Pick<BlobWriteDeps, 'db' | 'store'>,
  object: {
    uploadId: string;
    digest: string;
    size: number;
    pending?: PendingObject;
    claim?: CommitClaim;
    prepare?: (tx: SqlExecutor) => Promise<void>;
    /** Called once the claim, `prepare` and the pin committed (the claim holds from then on). */
    prepared?: () => void;
  },
): Promise<string> {
  const { claim } = object;
  const pin = await meta.pinBlobObject(deps.db, object.digest, { claim, prepare: object.prepare });
  if (pin === null) throw claim ? claim.refused() : new Error('the blob pin was not written');
  object.prepared?.();
  try {
    if (object.pending) await object.pending.commit();
    else await deps.store.commitUpload(object.uploadId, blobKey(object.digest), object.size);
  } catch (err) {
    await meta.unpinBlobObject(deps.db, pin).catch(() => undefined);
    throw err;
  }
  return pin;
}

/**
 * The quota check of a blob new to `repository`'s namespaces, to run in its pin's transaction; undefined when no
 * quota covers the repository (as of the coverage's last refresh), so that the pin needs no transaction.
 */
export function quotaCheck(deps: Pick<BlobWriteDeps, 'quotas'>, repository: string, digest: string, size: number): ((tx: SqlExecutor) => Promise<void>) | undefined {
  if (deps.quotas && !deps.quotas.mayCover(repository)) return undefined;
  // A blob new to a namespace with a quota must fit it (it is charged once a manifest references it).
  return (tx) => meta.assertBlobFitsQuotas(tx, repository, digest, size, deps.quotas);
}

/**
 * Records a committed blob (dropping its pin) and links it into the repository in one transaction, with its events
 * (`repository.created`, `blob.uploaded`) and its GC review; the upload session it came from, if any, is closed in
 * the same transaction. On failure the pin is dropped and nothing is recorded.
 */
export async function recordBlob(
  deps: BlobWriteDeps,
  blob: { repository: string; digest: string; size: number; uploadId: string | null; pin: string; context: EventContext },
): Promise<void> {
  const { repository, digest, size, uploadId, pin, context: ctx } = blob;
  await deps.db
    .transaction(async (tx) => {
      // One statement records, links, unpins and closes the session. A new repository, or a blob row the collector
      // took in between, is finished here: rare, and in the same transaction.
      const recorded = await meta.recordUploadedBlob(tx, { repository, digest, size, pinId: pin, uploadId });
      if (recorded.repositoryId === null || !recorded.blobHeld) {
        const repo = await meta.ensureRepository(tx, repository);
        if (repo.created) await appendEvent(tx, deps.events, { type: EVENT_TYPES.repositoryCreated, repository, subject: repository, context: ctx });
        if (!recorded.blobHeld) await meta.recordBlobObject(tx, digest, size, null);
        await meta.linkBlob(tx, repo.id, digest);
      }
      await appendEvent(tx, deps.events, {
        type: EVENT_TYPES.blobUploaded,
        repository,
        subject: `${repository}@${digest}`,
        context: ctx,
        data: { digest, size, mediaType: 'application/octet-stream' },
      });
      // A blob that no manifest references yet is reviewed later; a manifest push in between keeps it. Queued after
      // the event took the repository: a manifest push or deletion holds the repository when it queues a review of
      // the same blob, and queueing first deadlocked with them.
      await meta.queueBlobReview(tx, [digest], 'upload completed', deps.reviewDelayMs);
    })
    .catch(async (err) => {
      await meta.unpinBlobObject(deps.db, pin).catch(() => undefined);
      throw err;
    });
}

/**
 * Writes a whole blob (hashed natively as it streams) into the scratch upload `uploadId`, or, on a store that can
 * (`canWriteDirect`), straight to the blob's key, out of sight until committed; then, once the digest is known to
 * match, checks the quota and takes `claim` with the blob's pin (commitBlobObject: one statement when no quota
 * covers the repository), then commits it as the blob's object; resolves with its size and pin. `prepared` is called
 * once the pin committed. Throws DIGEST_INVALID (and drops the bytes written) when the bytes do not match `digest`,
 * and `claim.refused()` when the claim is refused.
 */
export async function storeWholeBody(
  deps: Pick<BlobWriteDeps, 'db' | 'store' | 'quotas'>,
  whole: {
    uploadId: string;
    digest: Digest;
    body: Readable;
    claim?: CommitClaim;
    prepared?: () => void;
    quotaRepository?: string;
  },
): Promise<{ size: number; pin: string }> {
  const { uploadId, digest } = whole;
  const digester = createNativeDigester(digest.algorithm);
  const counter = new DigestingStream(digester);
  const { store } = deps;
  // The digest is known before the bytes: on S3 they go to the blob's key, and the commit copies nothing.
  const pending = canWriteDirect(store) ? await store.writeObject(blobKey(digest.value), bodyThrough(whole.body, counter)) : undefined;
  try {
    const written = pending ? pending.size : await store.writeUpload(uploadId, 0, bodyThrough(whole.body, counter));
    const actual = await digestSpan(digest.algorithm, written, () => digester.digest());
    if (actual !== digest.value) {
      if (!pending) await store.deleteUpload(uploadId);
      throw errors.digestInvalid(undefined, { expected: digest.value, actual });
    }
    const { quotaRepository } = whole;
    const prepare = quotaRepository === undefined ? undefined : quotaCheck(deps, quotaRepository, digest.value, written);
    const pin = await commitBlobObject(deps, { uploadId, digest: digest.value, size: written, pending, claim: whole.claim, prepare, prepared: whole.prepared });
    return { size: written, pin };
  } finally {
    // Committed, this drops nothing; refused or failed, what was written goes.
    await pending?.abort().catch(() => undefined);
  }
}

/**
 * Stores a blob sent whole in one request (POST with `?digest=`): hashes it into a scratch upload, commits it and
 * records it in the repository. Throws DIGEST_INVALID when the bytes do not match; nothing is left behind then.
 */
export async function storeBlob(deps: BlobWriteDeps, blob: { repository: string; digest: Digest; body: Readable; context: EventContext }): Promise<StoredBlob> {
  const scratch = randomUUID();
  try {
    const { size, pin } = await storeWholeBody(deps, { uploadId: scratch, digest: blob.digest, body: blob.body, quotaRepository: blob.repository });
    await recordBlob(deps, { repository: blob.repository, digest: blob.digest.value, size, uploadId: null, pin, context: blob.context });
    return { digest: blob.digest.value, size };
  } catch (err) {
    // Committed, the scratch upload became the object; only a failed one leaves bytes behind.
    await deps.store.deleteUpload(scratch).catch(() => undefined);
    throw err;
  }
}

/**
 * Mounts a blob into `repository`: links it from `from` (or, when `from` is null, from any repository that holds
 * it) in one transaction that locks the blob against the garbage collector, with its events (`repository.created`,
 * `blob.mounted` when the link is new). Resolves false, having written nothing, when the source does not hold the
 * blob; the client then uploads it instead. Mounting from the repository itself is true when it holds the blob.
 */
export async function mountBlob(deps: BlobWriteDeps, mount: { repository: string; digest: string; from: string | null; context: EventContext }): Promise<boolean> {
  const { db } = deps;
  const { repository, digest, from } = mount;
  if (from === repository) return (await meta.findRepositoryBlob(db, repository, digest)) !== null;
  const held = from === null ? await meta.isBlobLinkedAnywhere(db, digest) : (await meta.findRepositoryBlob(db, from, digest)) !== null;
  if (!held) return false;
  return db.transaction(async (tx) => {
    const blob = await meta.lockBlob(tx, digest);
    if (!blob) return false;
    const repo = await meta.ensureRepository(tx, repository);
    if (repo.created) await appendEvent(tx, deps.events, { type: EVENT_TYPES.repositoryCreated, repository, subject: repository, context: mount.context });
    if (await meta.linkBlob(tx, repo.id, digest)) {
      await appendEvent(tx, deps.events, {
        type: EVENT_TYPES.blobMounted,
        repository,
        subject: `${repository}@${digest}`,
        context: mount.context,
        data: { digest, size: blob.size, mediaType: 'application/octet-stream', fromRepository: from },
      });
    }
    return true;
  });
}

/**
 * Deletes a blob from a repository (unlinks it, with its `blob.deleted` event) and queues it for GC review, which
 * deletes the object once nothing references it. Throws BLOB_UNKNOWN when the repository does not hold it.
 */
export async function removeBlob(deps: BlobWriteDeps, target: { repository: string; digest: string; context: EventContext }): Promise<void> {
  const { repository, digest } = target;
  await deps.db.transaction(async (tx) => {
    const repo = await meta.findRepository(tx, repository);
    // The repository before the link, as a repository deletion takes them (its cascade deletes the links).
    // A repository a deletion took out of sight since it was found is gone for this request too.
    const live = repo ? (await meta.lockRepositoriesForEvents(tx, [repo.id])).has(repo.id) : false;
    if (!repo || !live || !(await meta.unlinkBlob(tx, repo.id, digest))) throw errors.blobUnknown(digest);
    await appendEvent(tx, deps.events, { type: EVENT_TYPES.blobDeleted, repository, subject: `${repository}@${digest}`, context: target.context, data: { digest } });
    await meta.queueBlobReview(tx, [digest], 'unlinked from repository', deps.reviewDelayMs);
  });
}
