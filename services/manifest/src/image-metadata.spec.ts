/** What search records about a pushed manifest, read from a real (filesystem) blob store. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { validateManifest } from '@lading/oci';
import { BlobStore, blobKey, createFilesystemBlobStore } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
import { TestBlob, TestManifest, imageIndex, imageManifest, makeBlob } from '@lading/testing';
import { ConfigReader, createConfigReader, describeManifest } from './image-metadata';

const logger = createLogger({ service: 'test', level: 'silent' });

describe('image metadata', () => {
  let dir: string;
  let store: BlobStore;
  let configs: ConfigReader;

  async function stored(blob: TestBlob): Promise<TestBlob> {
    const id = `upload-${blob.digest.slice(7, 23)}`;
    await store.writeUpload(id, 0, Readable.from([blob.data]));
    await store.commitUpload(id, blobKey(blob.digest), blob.size);
    return blob;
  }
  const described = (m: TestManifest, reader: ConfigReader | undefined = configs) => describeManifest(validateManifest(m.body, m.mediaType), reader);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-image-metadata-'));
    store = await createFilesystemBlobStore(dir);
    configs = createConfigReader(store, logger);
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('takes an image\'s labels and platform from its config, and its annotations over labels of the same name', async () => {
    const config = await stored(
      makeBlob(
        JSON.stringify({
          os: 'linux',
          architecture: 'arm',
          variant: 'v7',
          config: { Labels: { 'org.opencontainers.image.title': 'from label', 'org.opencontainers.image.source': 'https://x/src', tier: 'db', weird: 7 } },
        }),
      ),
    );
    const manifest = imageManifest(config, [], { annotations: { 'org.opencontainers.image.title': 'from annotation' } });
    expect(await described(manifest)).toEqual({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.oci.image.config.v1+json',
      title: 'from annotation',
      description: null,
      source: 'https://x/src',
      labels: { 'org.opencontainers.image.title': 'from label', 'org.opencontainers.image.source': 'https://x/src', tier: 'db' },
      platforms: ['linux/arm/v7'],
    });
  });

  it('describes an image whose config is missing, unreadable or not JSON by its annotations alone, without throwing', async () => {
    const missing = makeBlob('{"os":"linux","architecture":"amd64"}');
    const garbage = await stored(makeBlob('not json at all'));
    for (const config of [missing, garbage]) {
      const m = await described(imageManifest(config, [], { annotations: { 'org.opencontainers.image.description': 'still here' } }));
      expect(m).toMatchObject({ description: 'still here', labels: {}, platforms: [] });
    }
  });

  it('does not read a config larger than the limit', async () => {
    const big = await stored(makeBlob(JSON.stringify({ os: 'linux', architecture: 'amd64', config: { Labels: { a: 'b' } }, pad: 'x'.repeat(2048) })));
    const small = createConfigReader(store, logger, { bytes: 1024, timeoutMs: 2000 });
    expect(await described(imageManifest(big, []), small)).toMatchObject({ labels: {}, platforms: [] });
    expect(await described(imageManifest(big, []))).toMatchObject({ labels: { a: 'b' }, platforms: ['linux/amd64'] });
  });

  it('gives an index its children\'s platforms (not unknown/unknown attestations) and never reads a config for it', async () => {
    const child = imageManifest(makeBlob('{}'), []);
    const index = imageIndex([child, child, child], {});
    const doc = index.doc as { manifests: Array<{ platform: unknown }> };
    doc.manifests[2].platform = { os: 'unknown', architecture: 'unknown' };
    const body = Buffer.from(JSON.stringify(doc));
    const m = await describeManifest(validateManifest(body, index.mediaType), {
      read: () => Promise.reject(new Error('an index has no config to read')),
    });
    expect(m).toMatchObject({ mediaType: 'application/vnd.oci.image.index.v1+json', platforms: ['linux/amd64', 'linux/arm64'], labels: {} });
  });

  it('keeps only label text Postgres can store, and bounds what it keeps', async () => {
    const config = await stored(makeBlob(JSON.stringify({ config: { Labels: { 'org.opencontainers.image.description': 'nul\u0000byte', ok: 'y' } } })));
    const m = await described(imageManifest(config, [], { annotations: { 'org.opencontainers.image.title': 'x'.repeat(1000) } }));
    expect(m.title).toHaveLength(256);
    expect(m.description).toBeNull();
    expect(m.labels).toEqual({ ok: 'y' });
  });
});
