import { createHash, randomBytes } from 'node:crypto';
import * as Minio from 'minio';
import { Readable } from 'node:stream';
import { SpanStatusCode } from '@opentelemetry/api';
import { withSpan } from '@lading/telemetry';
import { TestTracing, startTestTracing } from '@lading/telemetry/testing';
import { infraSettings } from '@lading/testing';
import { blobKey, canWriteDirect } from './blob-store';
import { describeBlobStoreDriver } from '../test/driver-suite';
import type { StorageMetrics } from './instrumented-blob-store';
import { createS3BlobStore } from './s3-driver';

const settings = infraSettings().storage;

function adminClient(): Minio.Client {
  const url = new URL(settings.endpoint);
  return new Minio.Client({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: settings.accessKey, secretKey: settings.secretKey, region: settings.region, pathStyle: true });
}

async function dropBucket(bucket: string): Promise<void> {
  const client = adminClient();
  const names: string[] = [];
  for await (const item of client.listObjectsV2(bucket, '', true) as AsyncIterable<Minio.BucketItem>) if (item.name) names.push(item.name);
  if (names.length > 0) await client.removeObjects(bucket, names);
  await client.removeBucket(bucket);
}

function testBucket(): string {
  return `lading-test-${randomBytes(6).toString('hex')}`;
}

describeBlobStoreDriver('s3 (MinIO)', async () => {
  const bucket = testBucket();
  const store = await createS3BlobStore({ ...settings, bucket });
  return { store, cleanup: () => dropBucket(bucket) };
});

describe('s3 driver', () => {
  const bucket = testBucket();
  afterAll(() => dropBucket(bucket));

  it('joins large chunks server-side and small ones by streaming, byte for byte either way', async () => {
    const store = await createS3BlobStore({ ...settings, bucket });
    for (const sizes of [[6 * 1024 * 1024, 6 * 1024 * 1024, 1000], [10, 20, 30]]) {
      const chunks = sizes.map((n) => randomBytes(n));
      const whole = Buffer.concat(chunks);
      const id = `join-${sizes.join('-')}`;
      let offset = 0;
      for (const chunk of chunks) offset += await store.writeUpload(id, offset, Readable.from([chunk]));
      const key = blobKey(`sha256:${createHash('sha256').update(whole).digest('hex')}`);
      await store.commitUpload(id, key, whole.length);
      const read: Buffer[] = [];
      for await (const c of await store.read(key)) read.push(c as Buffer);
      expect(Buffer.concat(read).equals(whole)).toBe(true);
    }
  });

  it('writes a chunk of many parts, sent several at a time, byte for byte in order', async () => {
    const store = await createS3BlobStore({ ...settings, bucket, partSize: 5 * 1024 * 1024 });
    // Uneven source chunks, so that parts are cut inside them: 23 MiB and a bit, 5 parts.
    const chunks = Array.from({ length: 31 }, (_, i) => randomBytes(700 * 1024 + i * 1013));
    const whole = Buffer.concat(chunks);
    expect(await store.writeUpload('many-parts', 0, Readable.from(chunks))).toBe(whole.length);
    const key = blobKey(`sha256:${createHash('sha256').update(whole).digest('hex')}`);
    await store.commitUpload('many-parts', key, whole.length);
    const read: Buffer[] = [];
    for await (const c of await store.read(key)) read.push(c as Buffer);
    expect(Buffer.concat(read).equals(whole)).toBe(true);
  });

  it('reuses part buffers between parts and writes without mixing their bytes: writes at once, in a row, chunks larger than a part', async () => {
    const store = await createS3BlobStore({ ...settings, bucket, partSize: 5 * 1024 * 1024 });
    const MiB = 1024 * 1024;
    // One 17 MiB chunk (cut across four parts), and many small uneven ones; two written at once, then both again.
    const sources = [[randomBytes(17 * MiB)], Array.from({ length: 40 }, (_, i) => randomBytes(400 * 1024 + i * 997))];
    async function writeAndRead(id: string, chunks: Buffer[]): Promise<void> {
      const whole = Buffer.concat(chunks);
      expect(await store.writeUpload(id, 0, Readable.from(chunks))).toBe(whole.length);
      const key = blobKey(`sha256:${createHash('sha256').update(whole).digest('hex')}`);
      await store.commitUpload(id, key, whole.length);
      const read: Buffer[] = [];
      for await (const c of await store.read(key)) read.push(c as Buffer);
      expect(Buffer.concat(read).equals(whole)).toBe(true);
    }
    await Promise.all(sources.map((chunks, i) => writeAndRead(`pooled-${i}`, chunks)));
    for (const [i, chunks] of sources.entries()) await writeAndRead(`pooled-again-${i}`, chunks.map((c) => Buffer.from(c).reverse()));
  });

  it('stores nothing of a chunk whose source fails after some parts were sent', async () => {
    const store = await createS3BlobStore({ ...settings, bucket, partSize: 5 * 1024 * 1024 });
    async function* failing(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 12; i++) yield randomBytes(1024 * 1024);
      throw new Error('client went away');
    }
    await expect(store.writeUpload('failed-parts', 0, Readable.from(failing()))).rejects.toThrow('client went away');
    // Nothing was stored: the next chunk must start at 0.
    await expect(store.writeUpload('failed-parts', 1, Readable.from([Buffer.from('x')]))).rejects.toThrow();
    const names: string[] = [];
    for await (const item of adminClient().listObjectsV2(bucket, 'uploads/failed-parts/', true) as AsyncIterable<Minio.BucketItem>) if (item.name) names.push(item.name);
    expect(names).toEqual([]);
  });

  it('presigns GET URLs that serve the object and honour Range', async () => {
    const store = await createS3BlobStore({ ...settings, bucket });
    const data = randomBytes(4096);
    await store.writeUpload('presign', 0, Readable.from([data]));
    const key = blobKey(`sha256:${'1'.repeat(64)}`);
    await store.commitUpload('presign', key, data.length);
    const url = await store.presignGet(key, 60);
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
    const part = await fetch(url, { headers: { Range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true);
  });
});

describe('s3 driver telemetry', () => {
  const bucket = testBucket();
  let tracing: TestTracing;
  beforeAll(() => {
    tracing = startTestTracing();
  });
  afterAll(async () => {
    await tracing.stop();
    await dropBucket(bucket);
  });

  it('makes a storage.<action> span per call inside a trace, and times every call into registry_storage_action_seconds', async () => {
    const timings: Array<{ seconds: number; driver: string; action: string }> = [];
    const metrics = { storageActionSeconds: { record: (seconds: number, labels?: { driver: string; action: string }) => void timings.push({ seconds, ...labels! }) } };
    const store = await createS3BlobStore({ ...settings, bucket, metrics: metrics as unknown as StorageMetrics });
    const content = randomBytes(1000);
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    await withSpan('push', {}, async () => {
      await store.writeUpload('u1', 0, Readable.from([content]));
      await store.commitUpload('u1', blobKey(digest), content.length);
      await store.stat(blobKey(digest));
      await expect(store.read(blobKey('sha256:' + '0'.repeat(64)))).rejects.toThrow('blob not found');
    });
    // Outside any trace (a readiness probe): timed, but no trace of its own.
    await store.ping();

    const [push] = tracing.spans().filter((s) => s.name === 'push');
    const storageSpans = tracing.spans().filter((s) => s.name.startsWith('storage.'));
    expect(storageSpans.map((s) => s.name)).toEqual(['storage.writeUpload', 'storage.commitUpload', 'storage.stat', 'storage.read']);
    for (const span of storageSpans) {
      expect(span.parentSpanContext?.spanId).toBe(push.spanContext().spanId);
      expect(span.attributes).toMatchObject({ 'storage.driver': 's3', 'storage.bucket': bucket });
    }
    expect(storageSpans[0].attributes).toMatchObject({ 'storage.key_prefix': 'uploads', 'storage.bytes': 1000 });
    expect(storageSpans[1].attributes).toMatchObject({ 'storage.key_prefix': 'blobs/sha256', 'storage.bytes': 1000 });
    expect(storageSpans[2].attributes).toMatchObject({ 'storage.bytes': 1000 });
    expect(storageSpans[3].status.code).toBe(SpanStatusCode.ERROR);
    expect(timings.map((t) => `${t.driver} ${t.action}`)).toEqual(['s3 writeUpload', 's3 commitUpload', 's3 stat', 's3 read', 's3 ping']);
    expect(timings.every((t) => t.seconds > 0 && t.seconds < 30)).toBe(true);
  });

  it('spans an object written straight to its key twice: its write (storage.writeObject) and its commit (storage.commitObject)', async () => {
    const store = await createS3BlobStore({ ...settings, bucket });
    const content = randomBytes(2000);
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    const before = tracing.spans().length;
    await withSpan('direct push', {}, async () => {
      if (!canWriteDirect(store)) throw new Error('the S3 driver writes straight to a key');
      const pending = await store.writeObject(blobKey(digest), Readable.from([content]));
      expect(pending.size).toBe(2000);
      await pending.commit();
    });
    const [push] = tracing.spans().slice(before).filter((s) => s.name === 'direct push');
    const storageSpans = tracing.spans().slice(before).filter((s) => s.name.startsWith('storage.'));
    expect(storageSpans.map((s) => s.name)).toEqual(['storage.writeObject', 'storage.commitObject']);
    for (const span of storageSpans) {
      expect(span.parentSpanContext?.spanId).toBe(push.spanContext().spanId);
      expect(span.attributes).toMatchObject({ 'storage.driver': 's3', 'storage.key_prefix': 'blobs/sha256' });
    }
    expect(storageSpans[0].attributes).toMatchObject({ 'storage.bytes': 2000 });
    expect((await store.stat(blobKey(digest)))?.size).toBe(2000);
  });
});
