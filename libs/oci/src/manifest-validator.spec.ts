import { createHash } from 'node:crypto';
import { OciError } from './errors';
import { MAX_MANIFEST_DEPTH, validateDescriptor, validateManifest } from './manifest-validator';
import { MediaTypes } from './media-types';

const sha256 = (content: string | Buffer) => `sha256:${createHash('sha256').update(content).digest('hex')}`;
const sha512 = (content: string | Buffer) => `sha512:${createHash('sha512').update(content).digest('hex')}`;

const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
const config = { mediaType: CONFIG_TYPE, digest: sha256('config'), size: 6 };
const layer = { mediaType: LAYER_TYPE, digest: sha256('layer'), size: 5 };
const child = { mediaType: MediaTypes.ociManifest, digest: sha256('child'), size: 500, platform: { os: 'linux', architecture: 'amd64' } };

function ociImage(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers: [layer], ...extra };
}

function ociIndex(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [child], ...extra };
}

const json = (doc: unknown) => Buffer.from(JSON.stringify(doc));

function invalidReason(body: Buffer, contentType?: string): OciError {
  try {
    validateManifest(body, contentType);
  } catch (err) {
    return err as OciError;
  }
  throw new Error('validateManifest accepted the manifest');
}

describe('validateManifest: accepted documents', () => {
  it('accepts an OCI image manifest and lists its config and layers as blobs that must exist', () => {
    const v = validateManifest(json(ociImage({ annotations: { 'org.opencontainers.image.title': 'x' } })), MediaTypes.ociManifest);
    expect(v.mediaType).toBe(MediaTypes.ociManifest);
    expect(v.kind).toBe('image');
    expect(v.subject).toBeNull();
    expect(v.annotations).toEqual({ 'org.opencontainers.image.title': 'x' });
    expect(v.references).toEqual([
      { kind: 'blob', role: 'config', descriptor: config, mustExist: true },
      { kind: 'blob', role: 'layer', descriptor: layer, mustExist: true },
    ]);
  });

  it('accepts a Docker v2 schema 2 manifest', () => {
    const doc = {
      schemaVersion: 2,
      mediaType: MediaTypes.dockerManifest,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha256('c'), size: 1 },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: sha256('l'), size: 1 }],
    };
    const v = validateManifest(json(doc), MediaTypes.dockerManifest);
    expect(v.kind).toBe('image');
    expect(v.mediaType).toBe(MediaTypes.dockerManifest);
    expect(v.references.map((r) => r.role)).toEqual(['config', 'layer']);
  });

  it('accepts an OCI index and lists its children as manifests that must exist', () => {
    const v = validateManifest(json(ociIndex()), MediaTypes.ociIndex);
    expect(v.kind).toBe('index');
    expect(v.artifactType).toBeNull();
    expect(v.references).toEqual([{ kind: 'manifest', role: 'child', descriptor: child, mustExist: true }]);
  });

  it('accepts a Docker manifest list', () => {
    const doc = {
      schemaVersion: 2,
      mediaType: MediaTypes.dockerManifestList,
      manifests: [{ ...child, mediaType: MediaTypes.dockerManifest }, { ...child, digest: sha256('arm'), mediaType: MediaTypes.dockerManifest, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }],
    };
    const v = validateManifest(json(doc), MediaTypes.dockerManifestList);
    expect(v.kind).toBe('index');
    expect(v.references).toHaveLength(2);
    expect(v.references[1].descriptor.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
  });

  it('accepts an artifact manifest with artifactType and subject, and reports both', () => {
    const subject = { mediaType: MediaTypes.ociManifest, digest: sha256('subject'), size: 700 };
    const emptyConfig = { mediaType: MediaTypes.ociEmpty, digest: sha256('{}'), size: 2, data: 'e30=' };
    const doc = ociImage({ artifactType: 'application/vnd.example.sbom.v1+json', config: emptyConfig, subject });
    const v = validateManifest(json(doc), MediaTypes.ociManifest);
    expect(v.artifactType).toBe('application/vnd.example.sbom.v1+json');
    expect(v.subject).toEqual(subject);
    expect(v.references[0].descriptor.data).toBe('e30=');
  });

  it('falls back to the config media type as the artifact type of an image without artifactType', () => {
    expect(validateManifest(json(ociImage()), MediaTypes.ociManifest).artifactType).toBe(CONFIG_TYPE);
  });

  it('keeps an index artifactType and accepts a subject on an index', () => {
    const subject = { mediaType: MediaTypes.ociIndex, digest: sha256('s'), size: 1 };
    const v = validateManifest(json(ociIndex({ artifactType: 'application/vnd.example+json', subject })), undefined);
    expect(v.artifactType).toBe('application/vnd.example+json');
    expect(v.subject).toEqual(subject);
  });

  it('marks a layer with urls (a foreign layer) as not needing to exist', () => {
    const foreign = { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: sha256('win'), size: 3, urls: ['https://example.com/layer'] };
    const v = validateManifest(json(ociImage({ layers: [layer, foreign] })), MediaTypes.ociManifest);
    expect(v.references.map((r) => [r.role, r.mustExist])).toEqual([
      ['config', true],
      ['layer', true],
      ['layer', false],
    ]);
    expect(v.references[2].descriptor.urls).toEqual(['https://example.com/layer']);
  });

  it('treats a layer with an empty urls list as a layer that must exist', () => {
    const v = validateManifest(json(ociImage({ layers: [{ ...layer, urls: [] }] })), MediaTypes.ociManifest);
    expect(v.references[1].mustExist).toBe(true);
  });

  it('takes the media type from Content-Type when the document has none', () => {
    const doc = ociImage({ mediaType: undefined });
    expect(validateManifest(json(doc), MediaTypes.dockerManifest).mediaType).toBe(MediaTypes.dockerManifest);
  });

  it('infers an OCI image or an OCI index when neither document nor Content-Type names a media type', () => {
    const image = ociImage({ mediaType: undefined });
    const index = ociIndex({ mediaType: undefined });
    expect(validateManifest(json(image), undefined).mediaType).toBe(MediaTypes.ociManifest);
    expect(validateManifest(json(index), undefined).mediaType).toBe(MediaTypes.ociIndex);
  });

  it('accepts an image manifest with no layers', () => {
    expect(validateManifest(json(ociImage({ layers: [] })), MediaTypes.ociManifest).references).toHaveLength(1);
  });

  it('accepts exactly the maximum nesting depth and refuses one level more', () => {
    const nested = (levels: number) => {
      let deep: unknown = 'x';
      for (let i = 0; i < levels; i++) deep = { a: deep };
      return json(ociImage({ extra: deep }));
    };
    // The document itself is the first level.
    expect(validateManifest(nested(MAX_MANIFEST_DEPTH - 1), MediaTypes.ociManifest).kind).toBe('image');
    expect(() => validateManifest(nested(MAX_MANIFEST_DEPTH), MediaTypes.ociManifest)).toThrow(/nests deeper/);
  });

  it('does not count brackets inside strings, including after escaped quotes, towards the depth', () => {
    const brackets = '\\"' + '['.repeat(100);
    const body = Buffer.from(JSON.stringify(ociImage()).replace('{', `{"note":"${brackets}",`));
    expect(validateManifest(body, MediaTypes.ociManifest).kind).toBe('image');
  });
});

describe('validateManifest: MANIFEST_INVALID', () => {
  let deep: unknown = 'x';
  for (let i = 0; i < MAX_MANIFEST_DEPTH; i++) deep = [deep];

  it.each<[string, Buffer, string | undefined]>([
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), MediaTypes.ociManifest],
    ['invalid JSON', Buffer.from('{"schemaVersion": 2,'), MediaTypes.ociManifest],
    ['a JSON array', json([ociImage()]), MediaTypes.ociManifest],
    ['a JSON string', json('manifest'), MediaTypes.ociManifest],
    ['JSON null', Buffer.from('null'), MediaTypes.ociManifest],
    ['nesting deeper than the limit', json(ociImage({ extra: deep })), MediaTypes.ociManifest],
    ['schemaVersion 1', json({ ...ociImage(), schemaVersion: 1 }), MediaTypes.ociManifest],
    ['a missing schemaVersion', json({ ...ociImage(), schemaVersion: undefined }), MediaTypes.ociManifest],
    ['schemaVersion "2" as a string', json({ ...ociImage(), schemaVersion: '2' }), MediaTypes.ociManifest],
    ['a non-string mediaType', json(ociImage({ mediaType: 5 })), undefined],
    ['a mediaType that differs from Content-Type', json(ociImage()), MediaTypes.dockerManifest],
    ['both layers and manifests', json(ociImage({ manifests: [child] })), MediaTypes.ociManifest],
    ['an image with manifests', json({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, manifests: [child] }), undefined],
    ['an unsupported media type', json(ociImage({ mediaType: 'application/json' })), undefined],
    ['a Docker schema 1 media type', json(ociImage({ mediaType: MediaTypes.dockerSchema1Signed })), undefined],
    ['an unsupported Content-Type and no mediaType', json({ schemaVersion: 2, config, layers: [] }), 'application/octet-stream'],
    ['a missing config', json({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, layers: [layer] }), undefined],
    ['missing layers', json({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config }), undefined],
    ['layers that are not an array', json(ociImage({ layers: layer })), undefined],
    ['an index with layers', json({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [child], layers: [] }), undefined],
    ['an index with config', json(ociIndex({ config })), undefined],
    ['an index without manifests', json({ schemaVersion: 2, mediaType: MediaTypes.ociIndex }), undefined],
    ['manifests that are not an array', json(ociIndex({ manifests: child })), undefined],
    ['manifest annotations with a non-string value', json(ociImage({ annotations: { a: 1 } })), undefined],
    ['manifest annotations that are an array', json(ociImage({ annotations: ['a'] })), undefined],
    ['an artifactType that is not a media type', json(ociImage({ artifactType: 'sbom' })), undefined],
    ['a subject that is not a descriptor', json(ociImage({ subject: sha256('x') })), undefined],
    ['a subject with a bad digest', json(ociImage({ subject: { mediaType: MediaTypes.ociManifest, digest: 'sha256:abc', size: 1 } })), undefined],
  ])('refuses %s', (_what, body, contentType) => {
    const err = invalidReason(body, contentType);
    expect(err).toBeInstanceOf(OciError);
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.status).toBe(400);
  });

  it('names Docker schema 1 in the message', () => {
    expect(invalidReason(json({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] }), undefined).message).toMatch(/schema 1/);
  });

  it('says which descriptor is wrong', () => {
    const err = invalidReason(json(ociImage({ layers: [layer, { ...layer, size: -1 }] })), undefined);
    expect(err.message).toBe('layers[1].size must be a non-negative integer');
  });
});

describe('validateManifest: text Postgres cannot store', () => {
  // JSON.stringify writes U+0000 as \\u0000 and a lone surrogate as \\ud800: valid JSON, but not storable text.
  it.each<[string, Record<string, unknown>, string]>([
    ['a U+0000 in a manifest annotation value', ociImage({ annotations: { 'org.example': 'a\u0000b' } }), 'annotations.org.example'],
    ['a U+0000 in a manifest annotation key', ociImage({ annotations: { 'a\u0000': 'x' } }), 'annotations.a\\u0000'],
    ['a lone high surrogate in an annotation', ociImage({ annotations: { a: '\ud800' } }), 'annotations.a'],
    ['a lone low surrogate in an annotation', ociImage({ annotations: { a: 'x\udc00' } }), 'annotations.a'],
    ['a U+0000 in a layer annotation', ociImage({ layers: [{ ...layer, annotations: { a: '\u0000' } }] }), 'layers[0].annotations.a'],
    ['a U+0000 in a platform field of an index child', ociIndex({ manifests: [{ ...child, platform: { os: 'linux\u0000', architecture: 'amd64' } }] }), 'manifests[0].platform.os'],
    ['a lone surrogate in an unknown top-level field', ociImage({ 'x-extra': ['ok', '\udfff'] }), 'x-extra[1]'],
  ])('refuses %s with MANIFEST_INVALID naming the field', (_what, doc, field) => {
    const err = invalidReason(json(doc), undefined);
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/U\+0000 or unpaired UTF-16 surrogates/);
    expect(err.detail).toEqual({ field });
  });

  it('accepts well-formed non-ASCII text, surrogate pairs (emoji) and right-to-left marks in annotations', () => {
    const annotations = { title: 'caf\u00e9 \u{1F600} \u200f\u05e9\u05dc\u05d5\u05dd', empty: '' };
    expect(validateManifest(json(ociImage({ annotations })), undefined).annotations).toEqual(annotations);
  });
});

describe('validateDescriptor', () => {
  it('keeps the optional fields it validated and drops unknown ones', () => {
    const d = validateDescriptor(
      { ...layer, artifactType: 'application/vnd.x+json', annotations: { k: 'v' }, urls: ['https://x'], platform: { os: 'linux', architecture: 'amd64' }, unknownField: 1 },
      'd',
    );
    expect(d).toEqual({ ...layer, artifactType: 'application/vnd.x+json', annotations: { k: 'v' }, urls: ['https://x'], platform: { os: 'linux', architecture: 'amd64' } });
  });

  it('accepts a sha512 descriptor', () => {
    expect(validateDescriptor({ ...layer, digest: sha512('layer') }, 'd').digest).toBe(sha512('layer'));
  });

  it('accepts embedded data whose bytes match the size and digest', () => {
    const content = 'hello, world';
    const data = Buffer.from(content).toString('base64');
    expect(validateDescriptor({ mediaType: LAYER_TYPE, digest: sha256(content), size: content.length, data }, 'd').data).toBe(data);
  });

  it('checks embedded data against a sha512 digest', () => {
    const data = Buffer.from('abc').toString('base64');
    expect(validateDescriptor({ mediaType: LAYER_TYPE, digest: sha512('abc'), size: 3, data }, 'd').data).toBe(data);
    expect(() => validateDescriptor({ mediaType: LAYER_TYPE, digest: sha512('abd'), size: 3, data }, 'd')).toThrow(/does not match digest/);
  });

  it('accepts empty embedded data for an empty blob', () => {
    expect(validateDescriptor({ mediaType: LAYER_TYPE, digest: sha256(''), size: 0, data: '' }, 'd').data).toBe('');
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['data that is not base64', { ...config, data: 'e30*' }, /must be base64/],
    ['data with bad padding length', { ...config, data: 'e30' }, /must be base64/],
    ['data that is not a string', { ...config, data: 12 }, /must be base64/],
    ['data whose length differs from size', { ...config, digest: sha256('{}'), size: 3, data: 'e30=' }, /length does not match size/],
    ['data whose digest differs', { ...config, digest: sha256('{ }'), size: 2, data: 'e30=' }, /does not match digest/],
    ['a missing mediaType', { digest: config.digest, size: 1 }, /mediaType/],
    ['a mediaType with parameters', { ...config, mediaType: 'application/json; charset=utf-8' }, /mediaType/],
    ['a missing digest', { mediaType: CONFIG_TYPE, size: 1 }, /digest is missing/],
    ['an invalid digest', { ...config, digest: 'sha256:XYZ' }, /not a valid digest/],
    ['an unsupported digest algorithm', { ...config, digest: `md5:${'a'.repeat(32)}` }, /not a valid digest/],
    ['a missing size', { mediaType: CONFIG_TYPE, digest: config.digest }, /size/],
    ['a fractional size', { ...config, size: 1.5 }, /size/],
    ['a negative size', { ...config, size: -1 }, /size/],
    ['a size given as a string', { ...config, size: '6' }, /size/],
    ['a size beyond the safe integers', { ...config, size: 2 ** 53 }, /size/],
    ['a non-string annotation value', { ...config, annotations: { a: true } }, /annotations/],
    ['a platform without architecture', { ...config, platform: { os: 'linux' } }, /platform/],
    ['urls that are not strings', { ...config, urls: [1] }, /urls/],
    ['urls that are not an array', { ...config, urls: 'https://x' }, /urls/],
    ['an artifactType that is not a media type', { ...config, artifactType: 'x' }, /artifactType/],
  ])('refuses %s with MANIFEST_INVALID', (_what, value, message) => {
    let err: OciError | undefined;
    try {
      validateDescriptor(value, 'config');
    } catch (e) {
      err = e as OciError;
    }
    expect(err?.code).toBe('MANIFEST_INVALID');
    expect(err?.message).toMatch(message);
  });

  it('refuses a descriptor that is not an object', () => {
    expect(() => validateDescriptor(null, 'config')).toThrow('config must be a descriptor object');
    expect(() => validateDescriptor([config], 'config')).toThrow('config must be a descriptor object');
  });
});
