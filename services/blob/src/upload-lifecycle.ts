/**
 * An upload session's life as domain operations: open it, find it (to resume or report its progress), append a
 * chunk, finish it into a blob, discard it. Session state lives in the database (offset, saved hash state, write
 * lease) and the store (the bytes), never in one process, so any replica can take the next chunk.
 *
 * Invariants kept here: a session is only ever seen by the principal that opened it; bytes are appended only under
 * the session's write lease, at the recorded offset; a finished session's blob, link, events and the session's
 * deletion commit in one transaction (recordBlob), so an event exists exactly when its change committed.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { EVENT_TYPES, EventContext, appendEvent } from '@lading/events';
import * as meta from '@lading/metadata';
import { DIGEST_ALGORITHMS, Digest, DigestAlgorithm, errors } from '@lading/oci';
import { InvalidOffsetError } from '@lading/storage';
import { BlobWriteDeps, StoredBlob, bodyThrough, commitBlobObject, digestSpan, quotaCheck, recordBlob, storeWholeBody } from './blob-writes';
import { parseContentRange } from './byte-range';
import { DigestingStream, MultiDigester } from './digester';

/** What the upload operations need: the blob writes' dependencies and the write lease's length. */
export interface UploadDeps extends BlobWriteDeps {
  /** How long a writer holds an upload session before another may take it over. */
  leaseMs: number;
}

/** Which session a request names, and who asks. */
export interface UploadRef {
  repository: string;
  /** The session id from the URL, not yet checked. */
  id: string;
  /** The caller as the gateway verified it ('' when auth is off). */
  principal: string;
}

/** A chunk of bytes for a session, with what the client declared about it. */
export interface UploadChunk {
  body: Readable;
  /** The raw `Content-Range` header, if any. */
  contentRange: string | undefined;
  /** The declared `Content-Length`, if any. */
  contentLength: number | undefined;
}

/** Every algorithm a session hashes its bytes with, so that it can be finished with a digest of any of them. */
const ALL_ALGORITHMS = Object.keys(DIGEST_ALGORITHMS) as DigestAlgorithm[];

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Opens an upload session in `repository` for `principal`, creating the repository (with its `repository.created`
 * event, in the same transaction) if it does not exist. `repositoryCreated` says whether events were written.
 * `context` is called only then: nearly every session opens in an existing repository, and building a request's
 * event context is not free (it checks the gateway's proof of the principal).
 */
export async function openUpload(deps: UploadDeps, open: { repository: string; principal: string; context: () => EventContext }): Promise<{ id: string; repositoryCreated: boolean }> {
  const { db } = deps;
  const { repository, principal } = open;
  const id = randomUUID();
  const algorithms = ALL_ALGORITHMS.join('+');
  // In a repository that exists (nearly always) the session is one statement; a new repository gets its event.
  if (await meta.createUploadInRepository(db, id, repository, algorithms, principal)) return { id, repositoryCreated: false };
  const repositoryCreated = await db.transaction(async (tx) => {
    const repo = await meta.ensureRepository(tx, repository);
    if (repo.created) await appendEvent(tx, deps.events, { type: EVENT_TYPES.repositoryCreated, repository, subject: repository, context: open.context() });
    await meta.createUpload(tx, id, repo.id, algorithms, principal);
    return repo.created;
  });
  return { id, repositoryCreated };
}

/**
 * Finds a session of the repository opened by `ref.principal` (to resume it, or to report its offset). Throws
 * BLOB_UPLOAD_UNKNOWN when the id is malformed, the session does not exist, or another principal opened it.
 */
export async function findOwnUpload(db: meta.SqlExecutor, ref: UploadRef): Promise<meta.UploadRow> {
  if (!UPLOAD_ID.test(ref.id)) throw errors.uploadUnknown(ref.id.slice(0, 64));
  const upload = await meta.findUpload(db, ref.repository, ref.id);
  // Another principal's session is answered exactly like one that does not exist.
  if (!upload || upload.principal !== ref.principal) throw errors.uploadUnknown(ref.id);
  return upload;
}

/** Appends a chunk to a loaded session at its current offset, under its write lease; resolves with the new offset. */
async function appendChunk(deps: UploadDeps, upload: meta.UploadRow, chunk: UploadChunk): Promise<number> {
  const { db, store, leaseMs } = deps;
  const range = parseContentRange(chunk.contentRange);
  if (range === 'invalid') throw errors.rangeInvalid('invalid Content-Range', upload.offset);
  if (range && range.start !== upload.offset) throw errors.rangeInvalid(`chunk starts at ${range.start}, upload is at ${upload.offset}`, upload.offset);
  const declared = chunk.contentLength;
  if (range && declared !== undefined && declared !== range.end - range.start + 1) {
    throw errors.rangeInvalid('Content-Range does not match Content-Length', upload.offset);
  }
  const claimed = await meta.claimUpload(db, upload.id, upload.offset, leaseMs);
  if (!claimed) throw errors.rangeInvalid('another chunk of this upload is being written', upload.offset);
  const renew = setInterval(() => void meta.claimUpload(db, upload.id, upload.offset, leaseMs).catch(() => undefined), leaseMs / 3);
  renew.unref();
  try {
    const digester = await MultiDigester.resume(ALL_ALGORITHMS, upload.hashState);
    const counter = new DigestingStream(digester);
    let written: number;
    try {
      written = await store.writeUpload(upload.id, upload.offset, bodyThrough(chunk.body, counter));
    } catch (err) {
      if (err instanceof InvalidOffsetError) throw errors.rangeInvalid('upload data is behind its recorded offset', err.stored);
      throw err;
    }
    if (range && written !== range.end - range.start + 1) {
      throw errors.rangeInvalid('chunk length does not match Content-Range', upload.offset);
    }
    clearInterval(renew);
    await meta.advanceUpload(db, upload.id, upload.offset + written, digester.save());
    return upload.offset + written;
  } catch (err) {
    clearInterval(renew);
    await meta.releaseUpload(db, upload.id).catch(() => undefined);
    throw err;
  }
}

/**
 * Appends a chunk (PATCH) to the caller's session at its current offset; resolves with the session's id and new
 * offset. Throws BLOB_UPLOAD_UNKNOWN (see findOwnUpload) or RANGE_INVALID (a chunk that does not start at the
 * offset, a Content-Range that does not match the bytes, or another writer holding the lease).
 */
export async function appendToUpload(deps: UploadDeps, ref: UploadRef, chunk: UploadChunk): Promise<{ id: string; offset: number }> {
  const upload = await findOwnUpload(deps.db, ref);
  return { id: upload.id, offset: await appendChunk(deps, upload, chunk) };
}

/** Deletes a session's row and bytes. */
async function dropUpload(deps: Pick<UploadDeps, 'db' | 'store'>, id: string): Promise<void> {
  await meta.deleteUpload(deps.db, id);
  await deps.store.deleteUpload(id);
}

/**
 * Finishes the caller's session (PUT with `?digest=`), with an optional last chunk, into a blob of the repository:
 * checks the digest, commits the bytes and records the blob, deleting the session in the same transaction.
 * Throws DIGEST_INVALID when the bytes do not match (a PUT that added no bytes leaves the session as it was; one
 * that appended its chunk has spoilt it, and it is discarded), BLOB_UPLOAD_UNKNOWN or RANGE_INVALID.
 */
export async function finishUpload(deps: UploadDeps, finish: { ref: UploadRef; digest: Digest; chunk: UploadChunk | null; context: EventContext }): Promise<StoredBlob> {
  const { db, store, leaseMs } = deps;
  const { ref, digest, chunk } = finish;
  const upload = await findOwnUpload(db, ref);
  let committed: { size: number; pin: string };
  let leased = false;
  if (upload.offset === 0 && upload.hashState === null && chunk && chunk.contentRange === undefined) {
    // The whole blob in the PUT: hash natively into a scratch upload and take the session only once the digest
    // matches, so that a wrong digest leaves the session exactly as it was.
    const scratch = randomUUID();
    let claimed = false;
    try {
      committed = await storeWholeBody(deps, {
        uploadId: scratch,
        digest,
        body: chunk.body,
        quotaRepository: ref.repository,
        claim: { uploadId: upload.id, offset: 0, leaseMs, refused: () => errors.rangeInvalid('another chunk of this upload is being written', 0) },
        // The claim holds once it committed with the pin (a refused or rolled-back one took nothing to release).
        prepared: () => {
          claimed = true;
        },
      });
    } catch (err) {
      if (claimed) await meta.releaseUpload(db, upload.id).catch(() => undefined);
      await store.deleteUpload(scratch).catch(() => undefined);
      throw err;
    }
  } else {
    const offset = chunk ? await appendChunk(deps, upload, chunk) : upload.offset;
    const state = chunk ? ((await meta.findUpload(db, ref.repository, upload.id))?.hashState ?? null) : upload.hashState;
    const digester = await MultiDigester.resume(ALL_ALGORITHMS, state);
    const actual = await digestSpan(digest.algorithm, offset, () => digester.digest(digest.algorithm));
    if (actual !== digest.value) {
      // A PUT that added no bytes leaves the session as it was (the client may retry with the right digest or
      // cancel); one whose final chunk was already appended has spoilt the session, which is discarded.
      if (chunk) await dropUpload(deps, upload.id);
      throw errors.digestInvalid(undefined, { expected: digest.value, actual });
    }
    // The commit holds the session's lease: a second PUT of the session (a client retrying after its answer was
    // lost) answers 416 until this one is done, instead of writing the same object at the same time.
    // The quota check and the claim commit with the blob's pin; refused, the session stays as it was.
    try {
      const pin = await commitBlobObject(deps, {
        uploadId: upload.id,
        digest: digest.value,
        size: offset,
        claim: { uploadId: upload.id, offset, leaseMs, refused: () => errors.rangeInvalid('another request is completing this upload', offset) },
        prepare: quotaCheck(deps, ref.repository, digest.value, offset),
        prepared: () => {
          leased = true;
        },
      });
      committed = { size: offset, pin };
    } catch (err) {
      if (leased) await meta.releaseUpload(db, upload.id).catch(() => undefined);
      throw err;
    }
  }
  try {
    await recordBlob(deps, { repository: ref.repository, digest: digest.value, size: committed.size, uploadId: upload.id, pin: committed.pin, context: finish.context });
  } catch (err) {
    if (leased) await meta.releaseUpload(db, upload.id).catch(() => undefined);
    throw err;
  }
  return { digest: digest.value, size: committed.size };
}

/** Cancels the caller's session (DELETE): its row and bytes go. Throws BLOB_UPLOAD_UNKNOWN (see findOwnUpload). */
export async function discardUpload(deps: UploadDeps, ref: UploadRef): Promise<void> {
  const upload = await findOwnUpload(deps.db, ref);
  await dropUpload(deps, upload.id);
}
