/**
 * The S3 blob driver (MinIO or any S3): the distributed mode's storage. S3 objects cannot be appended to, so an
 * upload's chunks are stored as one object per chunk, named by the offset where it starts, and joined on commit:
 * server-side (compose) when the chunks are large enough, streamed otherwise.
 */
import { PassThrough, Readable } from 'node:stream';
import * as Minio from 'minio';
import { markUnavailable } from '@lading/oci';
import { BlobNotFoundError, BlobStat, BlobStore, ByteRange, DirectWriteStore, InvalidOffsetError, PendingObject, STORAGE_UNAVAILABLE } from './blob-store';
import { StorageMetrics, instrumentBlobStore } from './instrumented-blob-store';

/** Settings of the S3 driver. */
export interface S3BlobStoreOptions {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region: string;
  /**
   * Multipart part size for streamed writes (8 MiB by default; it doubles every 1000 parts, so that a write stays
   * within S3's 10 000 parts). A write holds up to `PARTS_IN_FLIGHT` + 1 parts in memory: the ones being sent and the
   * one being read.
   */
  partSize?: number;
  /** Where call durations are recorded (`registry_storage_action_seconds`); spans are made either way, inside traces. */
  metrics?: StorageMetrics;
}

/** A BlobStore that can also hand out presigned URLs, so that pulls can bypass the registry. */
export interface RedirectingBlobStore extends BlobStore {
  /** A presigned GET URL for an object, valid for `ttlSeconds`. */
  presignGet(key: string, ttlSeconds: number): Promise<string>;
}

const MIN_COMPOSE_PART = 5 * 1024 * 1024;
/** Parts of one streamed write sent to the store at once while the next part is read. */
const PARTS_IN_FLIGHT = 3;
const OFFSET_WIDTH = 16;

/** A body to send, as the chunks it was read in (or one pooled part buffer, returned to its pool by `release`). */
interface BodyChunks {
  chunks: Buffer[];
  bytes: number;
  release?: () => void;
}

/**
 * Part buffers of one size, reused from part to part and from write to write; at most `keep` wait idle. A part of a
 * multipart upload is copied into one as it is read, so the request's own chunks (small buffers node allocates per
 * socket read) are garbage as soon as they are copied instead of living until their part is sent: in a 2 GB push
 * through the cluster they were the blob service's native memory growth (its peak RSS 300 MB, waiting for
 * collections), and the part goes to the store as one buffer, one write, instead of a stream of small ones.
 */
function createPartPool(size: number, keep: number): { take(): Buffer; give(buffer: Buffer): void } {
  const idle: Buffer[] = [];
  return {
    take: () => idle.pop() ?? Buffer.allocUnsafeSlow(size),
    give: (buffer) => {
      if (idle.length < keep) idle.push(buffer);
    },
  };
}

/** An object written but not yet visible at its key (see stageParts). */
interface StagedObject {
  size: number;
  complete(): Promise<void>;
  abort(): Promise<void>;
}

interface Part {
  name: string;
  offset: number;
  size: number;
}

function isNotFound(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === 'NotFound' || code === 'NoSuchKey' || code === 'NoSuchObject';
}

/**
 * S3 error codes (and resolver errors) that mean the store cannot serve right now, not that the request is wrong
 * (MinIO's `XMinioStorageFull`: its drives are below their free-space floor, which frees up when objects go).
 */
const UNAVAILABLE_CODES = new Set(['XMinioServerNotInitialized', 'XMinioStorageFull', 'ServiceUnavailable', 'SlowDown', 'InternalError', 'RequestTimeout', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Marks a failure meaning "the object store cannot serve right now" with STORAGE_UNAVAILABLE and as unavailable (the
 * HTTP layer then answers 503, not 500): such S3 errors, and minio-js's own retry giving up on a 5xx (MinIO starting up answers 503).
 */
function classify(err: unknown): unknown {
  if (typeof err !== 'object' || err === null) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (UNAVAILABLE_CODES.has(code) || /Retryable HTTP status: 5\d\d/.test(String(e.message ?? ''))) {
    markUnavailable(Object.assign(err, { code: STORAGE_UNAVAILABLE, s3Code: code || undefined }));
  }
  return err;
}

/** The store with every method's failure classified. */
function classifyingErrors<T extends object>(store: T): T {
  for (const [name, method] of Object.entries(store)) {
    if (typeof method !== 'function') continue;
    (store as Record<string, unknown>)[name] = (...args: unknown[]) =>
      Promise.resolve()
        .then(() => method.apply(store, args))
        .catch((err: unknown) => Promise.reject(classify(err)));
  }
  return store;
}

/** Where an S3-compatible store is and how to sign in to it: the storage settings a MinIO client needs. */
export interface MinioClientSettings {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region?: string;
  partSize?: number;
}

/**
 * A MinIO client for an endpoint URL, path-style (MinIO's default, and what a bucket name with dots needs): the one
 * way the driver and the operator tools that read the bucket directly make one.
 */
export function createMinioClient(settings: MinioClientSettings): Minio.Client {
  const url = new URL(settings.endpoint);
  return new Minio.Client({
    endPoint: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    useSSL: url.protocol === 'https:',
    accessKey: settings.accessKey,
    secretKey: settings.secretKey,
    region: settings.region,
    pathStyle: true,
    ...(settings.partSize !== undefined ? { partSize: settings.partSize } : {}),
  });
}

/** The S3 driver's store: presigned URLs for redirects, and writes straight to a blob's key. */
export type S3BlobStore = RedirectingBlobStore & DirectWriteStore;

/** Creates an S3 BlobStore, creating the bucket if it does not exist; every call is traced and timed. */
export async function createS3BlobStore(options: S3BlobStoreOptions): Promise<S3BlobStore> {
  const client = createMinioClient({ ...options, partSize: options.partSize ?? 16 * 1024 * 1024 });
  const bucket = options.bucket;
  if (!(await client.bucketExists(bucket))) {
    await client.makeBucket(bucket, options.region).catch(async (err) => {
      if (!(await client.bucketExists(bucket))) throw err;
    });
  }

  const partSize = options.partSize ?? 8 * 1024 * 1024;
  /** The size of part `n` (from 1): `partSize`, doubled every 1000 parts. */
  const partSizeOf = (n: number) => partSize * 2 ** Math.floor((n - 1) / 1000);
  const parts = createPartPool(partSize, PARTS_IN_FLIGHT + 1);
  const region = options.region;
  // The bodies of writes are sent unsigned (`UNSIGNED-PAYLOAD`, as minio-js does over HTTPS anyway): signing them
  // over plain HTTP makes minio-js hash every byte with SHA-256 and MD5 and the store hash it again to check; the
  // registry has already hashed the bytes (their digest is checked before a blob is committed).
  const bodies = createMinioClient({ ...options, partSize });
  bodies.enableSHA256 = false;
  const uploadPrefix = (uploadId: string) => `uploads/${uploadId}/`;

  /**
   * PUTs one body, given as the source's chunks (an object, or a part of a multipart upload with `query`); resolves
   * with its ETag. The chunks are sent as they are, never joined into one buffer (a copy of every byte).
   */
  async function putBody(objectName: string, body: BodyChunks, query?: string): Promise<string> {
    const res = await bodies.makeRequestStreamAsync(
      { method: 'PUT', bucketName: bucket, objectName, query, headers: { 'Content-Length': String(body.bytes) } },
      body.chunks.length === 1 ? body.chunks[0] : Readable.from(body.chunks, { objectMode: false }),
      '',
      [200],
      region,
    );
    res.resume();
    await new Promise<void>((resolve, reject) => res.once('end', resolve).once('error', reject));
    return String(res.headers.etag ?? '').replace(/^"|"$/g, '');
  }

  /**
   * Writes what `next` yields as the object `objectName`, out of sight until the result's `complete`: a body that fits
   * in one part is held and PUT on completion, a larger one is a multipart upload whose parts are sent
   * `PARTS_IN_FLIGHT` at a time while the next one is read, completed on completion (S3 shows nothing of a multipart
   * upload before that). Rejects as soon as the source or a part fails, and then stores nothing (the multipart upload
   * is aborted).
   */
  async function stageParts(objectName: string, next: () => Promise<Buffer | null>): Promise<StagedObject> {
    /** What the last part read took of a chunk that went past its end. */
    let carry: Buffer | null = null;
    let ended = false;
    /**
     * Reads up to a part's worth of chunks (the source's are small); null at the end. The first part is kept as the
     * chunks read (a blob that fits in it is never copied), later ones are copied into a part buffer of the pool.
     */
    let partsRead = 0;
    async function readPart(): Promise<BodyChunks | null> {
      const size = partSizeOf(++partsRead);
      if (partsRead > 1) return readPooledPart(size);
      const chunks: Buffer[] = carry ? [carry] : [];
      let bytes = carry?.length ?? 0;
      carry = null;
      while (bytes < size && !ended) {
        const chunk = await next();
        if (chunk === null) ended = true;
        else if (chunk.length > 0) {
          chunks.push(chunk);
          bytes += chunk.length;
        }
      }
      if (bytes === 0) return null;
      if (bytes > size) {
        const last = chunks.pop()!;
        const kept = last.length - (bytes - size);
        chunks.push(last.subarray(0, kept));
        carry = last.subarray(kept);
        bytes = size;
      }
      return { chunks, bytes };
    }

    /** Reads up to `size` bytes into one part buffer (the pool's, or one of its own past the 1000th part). */
    async function readPooledPart(size: number): Promise<BodyChunks | null> {
      const pooled = size === partSize;
      const buffer = pooled ? parts.take() : Buffer.allocUnsafeSlow(size);
      let bytes = 0;
      let chunk = carry;
      carry = null;
      while (bytes < size) {
        if (chunk === null) {
          if (ended) break;
          chunk = await next();
          if (chunk === null) {
            ended = true;
            break;
          }
        }
        const taken = Math.min(chunk.length, size - bytes);
        chunk.copy(buffer, bytes, 0, taken);
        bytes += taken;
        if (taken < chunk.length) carry = chunk.subarray(taken);
        chunk = null;
      }
      const release = pooled ? () => parts.give(buffer) : undefined;
      if (bytes === 0) {
        release?.();
        return null;
      }
      return { chunks: [buffer.subarray(0, bytes)], bytes, release };
    }

    const first = await readPart();
    if (!first) return { size: 0, complete: () => putBody(objectName, { chunks: [], bytes: 0 }).then(() => undefined), abort: async () => undefined };
    if (ended && !carry) return { size: first.bytes, complete: () => putBody(objectName, first).then(() => undefined), abort: async () => undefined };
    const uploadId = await bodies.initiateNewMultipartUpload(bucket, objectName, {});
    const abort = () => bodies.abortMultipartUpload(bucket, objectName, uploadId).catch(() => undefined);
    const etags: Array<{ part: number; etag: string }> = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown = null;
    let total = 0;
    const send = (part: number, body: BodyChunks) => {
      total += body.bytes;
      const sent: Promise<void> = putBody(objectName, body, `partNumber=${part}&uploadId=${encodeURIComponent(uploadId)}`).then(
        (etag) => {
          etags.push({ part, etag });
          // Sent and answered: nothing refers to the buffer any more. (One whose request failed is dropped, not
          // reused: a write of it may still be pending on a socket being torn down.)
          body.release?.();
        },
        (err: unknown) => void (failure ??= err),
      );
      inFlight.add(sent);
      void sent.finally(() => inFlight.delete(sent));
    };
    try {
      send(1, first);
      for (let part = 2; ; part++) {
        if (failure) throw failure;
        const body = await readPart();
        if (!body) break;
        while (inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(inFlight);
        if (failure) throw failure;
        send(part, body);
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
    } catch (err) {
      await Promise.allSettled(inFlight);
      await abort();
      throw err;
    }
    etags.sort((a, b) => a.part - b.part);
    return {
      size: total,
      complete: async () => {
        await bodies.completeMultipartUpload(bucket, objectName, uploadId, etags);
      },
      abort,
    };
  }

  /** The chunks of a stream as `stageParts` reads them. */
  function chunksOf(source: Readable): () => Promise<Buffer | null> {
    const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
    return async () => {
      const next = await iterator.next();
      if (next.done) return null;
      return typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    };
  }

  async function listParts(uploadId: string): Promise<Part[]> {
    const parts: Part[] = [];
    const stream = client.listObjectsV2(bucket, uploadPrefix(uploadId), true);
    for await (const item of stream as AsyncIterable<Minio.BucketItem>) {
      if (!item.name) continue;
      parts.push({ name: item.name, offset: Number(item.name.slice(item.name.lastIndexOf('/') + 1)), size: item.size });
    }
    return parts.sort((a, b) => a.offset - b.offset);
  }

  async function removeAll(names: string[]): Promise<void> {
    if (names.length > 0) await client.removeObjects(bucket, names);
  }

  async function exists(key: string): Promise<boolean> {
    try {
      await client.statObject(bucket, key);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * Stores a stream as an object; rejects as soon as the stream fails. (minio-js's streamed upload neither listens
   * for the stream's errors, which would crash the process, nor ends: it would wait forever. It never completes
   * the object either, so a failed stream stores nothing.)
   */
  async function putStream(key: string, stream: Readable, size?: number): Promise<void> {
    let fail: (err: Error) => void = () => undefined;
    const failed = new Promise<never>((_resolve, reject) => (fail = reject));
    stream.on('error', (err) => fail(err));
    await Promise.race([client.putObject(bucket, key, stream, size), failed]);
  }

  /** Streams the parts one after another, cut at `size` bytes. */
  function concatenate(parts: Part[], size: number): Readable {
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    void (async () => {
      try {
        let remaining = size;
        for (const part of parts) {
          if (remaining <= 0) break;
          const length = Math.min(part.size, remaining);
          const source = await client.getPartialObject(bucket, part.name, 0, length);
          for await (const chunk of source) {
            if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
          }
          remaining -= length;
        }
        out.end();
      } catch (err) {
        out.destroy(err as Error);
      }
    })();
    return out;
  }

  const store = classifyingErrors<S3BlobStore>({
    driverName: 's3',

    async writeUpload(uploadId: string, offset: number, source: Readable): Promise<number> {
      const parts = await listParts(uploadId);
      const kept = parts.filter((p) => p.offset < offset);
      const stored = kept.reduce((end, p) => Math.max(end, p.offset + p.size), 0);
      if (offset > stored) throw new InvalidOffsetError(uploadId, offset, stored);
      await removeAll(parts.filter((p) => p.offset >= offset).map((p) => p.name));
      // An empty chunk stores nothing (S3 refuses a multipart upload with no parts).
      const name = `${uploadPrefix(uploadId)}${String(offset).padStart(OFFSET_WIDTH, '0')}`;
      const read = chunksOf(source);
      const staged = await stageParts(name, read);
      if (staged.size === 0) return 0;
      try {
        await staged.complete();
      } catch (err) {
        await staged.abort();
        throw err;
      }
      return staged.size;
    },

    async writeObject(key: string, source: Readable): Promise<PendingObject> {
      // Straight to the blob's key: a commit then copies nothing (an upload's object is copied to the key by the
      // store, which for 256 MB took MinIO seconds). Until `commit` the bytes are a multipart upload S3 lists under
      // no key, or a part held here; one abandoned by a process that died is dropped by the store's expiry of stale
      // multipart uploads (MinIO's default: after 24 hours).
      const staged = await stageParts(key, chunksOf(source));
      let settled = false;
      return {
        size: staged.size,
        commit: async () => {
          if (settled) return;
          settled = true;
          try {
            // An object already at the key is kept, as commitUpload keeps it: a reader may be streaming it.
            if (await exists(key)) await staged.abort();
            else await staged.complete();
          } catch (err) {
            await staged.abort();
            throw classify(err);
          }
        },
        abort: async () => {
          if (settled) return;
          settled = true;
          await staged.abort();
        },
      };
    },

    async commitUpload(uploadId: string, key: string, size: number): Promise<void> {
      // One listing, asked beside the existence check, serves the checks below and the clean-up at the end (a commit
      // of a small blob was otherwise 6 round trips to the store in a row).
      const [listed, present] = await Promise.all([listParts(uploadId), exists(key)]);
      const parts = listed.filter((p) => p.offset < size || (size === 0 && p.offset === 0));
      if (present) {
        await removeAll(listed.map((p) => p.name));
        return;
      }
      let expected = 0;
      for (const p of parts) {
        if (p.offset !== expected) throw new Error(`upload ${uploadId}: chunk at ${p.offset} does not follow ${expected}`);
        expected += p.size;
      }
      if (expected < size) throw new Error(`upload ${uploadId}: ${expected} bytes stored, ${size} expected`);
      const exact = expected === size;
      if (parts.length === 0) {
        await client.putObject(bucket, key, Buffer.alloc(0), 0);
      } else if (parts.length === 1 && exact) {
        await client.copyObject(bucket, key, `/${bucket}/${parts[0].name}`);
      } else if (exact && parts.slice(0, -1).every((p) => p.size >= MIN_COMPOSE_PART)) {
        await client.composeObject(
          new Minio.CopyDestinationOptions({ Bucket: bucket, Object: key }),
          parts.map((p) => new Minio.CopySourceOptions({ Bucket: bucket, Object: p.name })),
        );
      } else {
        // With its size known, an object up to the part size is one PUT rather than a multipart upload.
        await putStream(key, concatenate(parts, size), size);
      }
      await removeAll(listed.map((p) => p.name));
    },

    async deleteUpload(uploadId: string): Promise<void> {
      await removeAll((await listParts(uploadId)).map((p) => p.name));
    },

    async stat(key: string): Promise<BlobStat | null> {
      try {
        return { size: (await client.statObject(bucket, key)).size };
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    },

    async read(key: string, range?: ByteRange): Promise<Readable> {
      try {
        if (range) return await client.getPartialObject(bucket, key, range.start, range.end - range.start + 1);
        return await client.getObject(bucket, key);
      } catch (err) {
        if (isNotFound(err)) throw new BlobNotFoundError(key);
        throw err;
      }
    },

    async delete(key: string): Promise<void> {
      await client.removeObject(bucket, key);
    },

    async ping(): Promise<void> {
      if (!(await client.bucketExists(bucket))) throw new Error(`bucket ${bucket} does not exist`);
    },

    presignGet(key: string, ttlSeconds: number): Promise<string> {
      return client.presignedGetObject(bucket, key, ttlSeconds);
    },
  });
  return instrumentBlobStore(store, { bucket, metrics: options.metrics });
}
