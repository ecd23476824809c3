/**
 * The bad-input corpus: every case is one real request the registry must refuse (or, for pagination past the
 * maximum, clamp) with its documented status and OCI error code, without a 5xx and without changing anything it
 * stores. Families of cases are generated where the same rule applies across inputs or routes.
 */
import { randomBytes } from 'node:crypto';
import { MAX_MANIFEST_DEPTH, MediaTypes, OciErrorCode, digestOf } from '@lading/oci';
import { TestBlob, makeBlob } from '@lading/testing';
import { BodyFraming, WireRequest, WireResponse, send } from './bad-input-client';
import type { LockedSeed, Seed } from './bad-input-seed';

/** The groups the corpus is counted by. */
export type Category =
  | 'name'
  | 'tag'
  | 'digest'
  | 'manifest-document'
  | 'manifest-size'
  | 'missing-reference'
  | 'upload'
  | 'range'
  | 'pagination'
  | 'route'
  | 'delete-disabled';

/** Which registry a case runs against. */
export type Target = 'main' | 'locked';

/** What a case's request builder can use. */
export interface CaseContext {
  seed: Seed;
  locked: LockedSeed;
}

/** One case of the corpus. */
export interface BadInputCase {
  /** Says the behaviour: the input, then `→ <status> <CODE>`. */
  name: string;
  category: Category;
  target: Target;
  /**
   * A step that changes state before the case (e.g. opens an upload session); the case's snapshot is taken after
   * it. Its result (e.g. the session's path) is passed to `request`.
   */
  setup?: (port: number, ctx: CaseContext) => Promise<string>;
  request: (ctx: CaseContext, prepared: string) => WireRequest;
  status: number;
  /** The OCI error code of the envelope; absent for HEAD (no body) and for clamped 200s. */
  code?: OciErrorCode;
  /** The error message must match (says which rule refused the input). */
  message?: RegExp;
  /** Response headers that must be present with these values. */
  headers?: (ctx: CaseContext) => Record<string, string | RegExp>;
  /** Extra assertions on the response. */
  check?: (res: WireResponse, ctx: CaseContext) => void;
}

const OCI_MANIFEST = MediaTypes.ociManifest;
const OCI_INDEX = MediaTypes.ociIndex;
const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
const MIB4 = 4 * 1024 * 1024;

const hex = (n: number, c = 'a') => c.repeat(n);
const sha256Of = (data: Buffer | string) => digestOf(data);
const sha512Of = (data: Buffer | string) => digestOf(data, 'sha512');
/** A well-formed sha256 digest of content nobody pushed. */
const UNKNOWN_SHA256 = sha256Of('content nobody pushed');
/** A well-formed sha512 digest of content nobody pushed. */
const UNKNOWN_SHA512 = sha512Of('content nobody pushed');

const cases: BadInputCase[] = [];

function add(c: Omit<BadInputCase, 'target'> & { target?: Target }): void {
  cases.push({ target: 'main', ...c });
}

// ---------------------------------------------------------------------------------------------------------------
// Documents

function descriptor(blob: TestBlob, mediaType: string): Record<string, unknown> {
  return { mediaType, digest: blob.digest, size: blob.size };
}

/** A valid image manifest over the seeded blobs, with `patch` applied (undefined values delete keys). */
function image(seed: Seed, patch: Record<string, unknown> = {}): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptor(seed.config, CONFIG_TYPE),
    layers: [descriptor(seed.layer, LAYER_TYPE)],
  };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete doc[k];
    else doc[k] = v;
  }
  return doc;
}

/** A valid index over the seeded image, with `patch` applied. */
function index(seed: Seed, patch: Record<string, unknown> = {}): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: OCI_MANIFEST, digest: seed.image.digest, size: seed.image.body.length, platform: { os: 'linux', architecture: 'amd64' } }],
  };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete doc[k];
    else doc[k] = v;
  }
  return doc;
}

/** The seeded config descriptor with `patch` applied. */
function configWith(seed: Seed, patch: Record<string, unknown>): Record<string, unknown> {
  const d = { ...descriptor(seed.config, CONFIG_TYPE), ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete d[k];
  return d;
}

/** The seeded layer descriptor with `patch` applied. */
function layerWith(seed: Seed, patch: Record<string, unknown>): Record<string, unknown> {
  const d = { ...descriptor(seed.layer, LAYER_TYPE), ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete d[k];
  return d;
}

/** `depth` levels of nesting: `[[[...]]]` or `{"a":{"a":...}}`. */
function nested(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
}

/** An index whose `manifests[0]` is an index nesting `depth` levels of `manifests[0]`. */
function nestedIndex(depth: number): string {
  let inner = `{"mediaType":"${OCI_INDEX}","manifests":[]}`;
  for (let i = 1; i < depth; i++) inner = `{"mediaType":"${OCI_INDEX}","manifests":[${inner}]}`;
  return `{"schemaVersion":2,"mediaType":"${OCI_INDEX}","manifests":[${inner}]}`;
}

/** A valid image manifest over the seeded blobs, padded (in an annotation) to exactly `size` bytes. */
export function paddedManifest(seed: Seed, size: number): Buffer {
  const base = JSON.stringify(image(seed, { annotations: { pad: '' } }));
  return Buffer.from(base.replace('"pad":""', `"pad":"${'p'.repeat(size - base.length)}"`));
}

function putManifest(seed: Seed, body: Buffer | string, contentType: string | undefined = OCI_MANIFEST, reference = 'bad', framing?: BodyFraming): WireRequest {
  return {
    method: 'PUT',
    path: `/v2/${seed.repo}/manifests/${reference}`,
    headers: contentType === undefined ? {} : { 'Content-Type': contentType },
    body,
    framing,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Names: every bad name on every kind of route.

const BAD_NAMES: Array<[string, string]> = [
  ['uppercase component', 'Seed/app'],
  ['uppercase letter mid-component', 'seed/aPp'],
  ['a `..` component', 'seed/../app'],
  ['the name `..`', '..'],
  ['a `.` component', 'seed/./app'],
  ['a percent-encoded slash', 'seed%2Fapp'],
  ['an empty component (`//`)', 'seed//app'],
  ['a trailing slash', 'seed/app/'],
  ['256 characters', 'a'.repeat(256)],
  ['a leading separator', '-seed/app'],
  ['a doubled period', 'seed/a..pp'],
  ['three underscores', 'seed/a___pp'],
  ['a space', 'seed/a%20pp'],
  ['a malformed percent escape', 'seed/a%zzpp'],
];

const NAME_ROUTES: Array<{ label: string; build: (name: string, ctx: CaseContext) => WireRequest; status?: number }> = [
  { label: 'tags list GET', build: (n) => ({ method: 'GET', path: `/v2/${n}/tags/list` }) },
  { label: 'manifest GET', build: (n) => ({ method: 'GET', path: `/v2/${n}/manifests/v1` }) },
  { label: 'manifest PUT', build: (n, { seed }) => ({ method: 'PUT', path: `/v2/${n}/manifests/v1`, headers: { 'Content-Type': OCI_MANIFEST }, body: seed.image.body }) },
  { label: 'blob GET', build: (n, { seed }) => ({ method: 'GET', path: `/v2/${n}/blobs/${seed.layer.digest}` }) },
  { label: 'upload POST', build: (n) => ({ method: 'POST', path: `/v2/${n}/blobs/uploads/` }) },
  { label: 'referrers GET', build: (n, { seed }) => ({ method: 'GET', path: `/v2/${n}/referrers/${seed.image.digest}` }) },
];

for (const [what, name] of BAD_NAMES) {
  for (const route of NAME_ROUTES) {
    add({
      name: `${route.label} on a repository name with ${what} → 400 NAME_INVALID`,
      category: 'name',
      request: (ctx) => route.build(name, ctx),
      status: 400,
      code: 'NAME_INVALID',
    });
  }
}
for (const [what, name] of BAD_NAMES.slice(0, 4)) {
  add({ name: `manifest HEAD on a repository name with ${what} → 400 (no body)`, category: 'name', request: () => ({ method: 'HEAD', path: `/v2/${name}/manifests/v1` }), status: 400 });
  add({
    name: `upload PATCH on a repository name with ${what} → 400 NAME_INVALID`,
    category: 'name',
    request: ({ seed }) => ({ method: 'PATCH', path: `/v2/${name}/blobs/uploads/${seed.session.id}`, headers: { 'Content-Range': '1000-1009' }, body: Buffer.alloc(10) }),
    status: 400,
    code: 'NAME_INVALID',
  });
}
for (const [what, from] of [
  ['uppercase', 'Seed/other'],
  ['`//`', 'seed//other'],
  ['`..`', '..'],
  ['nothing in it', ''],
  ['256 characters', 'b'.repeat(256)],
] as const) {
  add({
    name: `mount whose from names a repository with ${what} → 400 NAME_INVALID`,
    category: 'name',
    request: ({ seed }) => ({ method: 'POST', path: `/v2/${seed.repo}/blobs/uploads/?mount=${seed.foreign.digest}&from=${from}` }),
    status: 400,
    code: 'NAME_INVALID',
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Tags.

const BAD_TAGS: Array<[string, string]> = [
  ['starting with a dash', '-v1'],
  ['starting with a period', '.v1'],
  ['of 129 characters', 't'.repeat(129)],
  ['with a plus sign', 'v1+build'],
  ['with a space', 'v1%20beta'],
  ['with non-ASCII letters', 'v%C3%BC'],
  ['with an at sign', 'v1@x'],
];
for (const [what, tag] of BAD_TAGS) {
  add({
    name: `manifest PUT to a tag ${what} → 400 TAG_INVALID`,
    category: 'tag',
    request: ({ seed }) => putManifest(seed, seed.image.body, OCI_MANIFEST, tag),
    status: 400,
    code: 'TAG_INVALID',
  });
}
for (const [what, tag] of BAD_TAGS.slice(0, 4)) {
  add({
    name: `manifest GET of a tag ${what} (no such tag can exist) → 404 MANIFEST_UNKNOWN`,
    category: 'tag',
    request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/manifests/${tag}` }),
    status: 404,
    code: 'MANIFEST_UNKNOWN',
  });
}
for (const [what, tag] of BAD_TAGS.slice(0, 2)) {
  add({
    name: `manifest DELETE of a tag ${what} → 404 MANIFEST_UNKNOWN`,
    category: 'tag',
    request: ({ seed }) => ({ method: 'DELETE', path: `/v2/${seed.repo}/manifests/${tag}` }),
    status: 404,
    code: 'MANIFEST_UNKNOWN',
  });
}
for (const [what, query] of [
  ['a bad ?tag=', 'tag=-v1'],
  ['an empty ?tag=', 'tag='],
  ['one good and one bad ?tag=', 'tag=ok&tag=.bad'],
  ['a ?tag= of 129 characters', `tag=${'t'.repeat(129)}`],
] as const) {
  add({
    name: `manifest PUT by digest with ${what} → 400 TAG_INVALID`,
    category: 'tag',
    request: ({ seed }) => ({ ...putManifest(seed, seed.image.body, OCI_MANIFEST, seed.image.digest), path: `/v2/${seed.repo}/manifests/${seed.image.digest}?${query}` }),
    status: 400,
    code: 'TAG_INVALID',
  });
}
add({
  name: 'manifest PUT by tag whose reference looks like a digest but is a tag with a colon → 400 DIGEST_INVALID',
  category: 'tag',
  request: ({ seed }) => putManifest(seed, seed.image.body, OCI_MANIFEST, 'v1:beta'),
  status: 400,
  code: 'DIGEST_INVALID',
});

// ---------------------------------------------------------------------------------------------------------------
// Digests: malformed, wrong length, unknown algorithm — on every route that takes one.

const BAD_DIGESTS: Array<[string, string]> = [
  ['a short sha256 encoding', 'sha256:abc'],
  ['a 65-character sha256 encoding', `sha256:${hex(65)}`],
  ['uppercase hex', `sha256:${hex(64, 'A')}`],
  ['non-hex characters', `sha256:${hex(64, 'g')}`],
  ['the unknown algorithm md5', `md5:${hex(32)}`],
  ['the unsupported algorithm sha384', `sha384:${hex(96)}`],
  ['the unknown algorithm blake3', `blake3:${hex(64)}`],
  ['an uppercase algorithm', `SHA256:${hex(64)}`],
  ['an empty encoding', 'sha256:'],
  ['an empty algorithm', `:${hex(64)}`],
  ['a sha256-length sha512 encoding', `sha512:${hex(64)}`],
  ['an algorithm with an unknown suffix', `sha256+b64:${hex(43)}`],
];

for (const [what, digest] of BAD_DIGESTS) {
  add({
    name: `blob GET by a digest with ${what} → 400 DIGEST_INVALID`,
    category: 'digest',
    request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/blobs/${digest}` }),
    status: 400,
    code: 'DIGEST_INVALID',
  });
}
for (const [what, digest] of BAD_DIGESTS.slice(0, 8)) {
  add({
    name: `manifest GET by a digest with ${what} → 400 DIGEST_INVALID`,
    category: 'digest',
    request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/manifests/${digest}` }),
    status: 400,
    code: 'DIGEST_INVALID',
  });
}
for (const [what, digest] of BAD_DIGESTS.slice(0, 4)) {
  add({
    name: `manifest PUT by a digest with ${what} → 400 DIGEST_INVALID`,
    category: 'digest',
    request: ({ seed }) => putManifest(seed, seed.image.body, OCI_MANIFEST, digest),
    status: 400,
    code: 'DIGEST_INVALID',
  });
  add({
    name: `blob DELETE by a digest with ${what} → 400 DIGEST_INVALID`,
    category: 'digest',
    request: ({ seed }) => ({ method: 'DELETE', path: `/v2/${seed.repo}/blobs/${digest}` }),
    status: 400,
    code: 'DIGEST_INVALID',
  });
  add({
    name: `monolithic POST ?digest= with ${what} → 400 DIGEST_INVALID`,
    category: 'digest',
    request: ({ seed }) => ({ method: 'POST', path: `/v2/${seed.repo}/blobs/uploads/?digest=${digest}`, headers: { 'Content-Type': 'application/octet-stream' }, body: seed.layer.data }),
    status: 400,
    code: 'DIGEST_INVALID',
  });
}
for (const [what, digest] of BAD_DIGESTS.slice(4, 8)) {
  add({
    name: `manifest DELETE by a digest with ${what} → 400 DIGEST_INVALID`,
    category: 'digest',
    request: ({ seed }) => ({ method: 'DELETE', path: `/v2/${seed.repo}/manifests/${digest}` }),
    status: 400,
    code: 'DIGEST_INVALID',
  });
  add({
    name: `referrers GET for a digest with ${what} → 400 DIGEST_INVALID`,
    category: 'digest',
    request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/referrers/${digest}` }),
    status: 400,
    code: 'DIGEST_INVALID',
  });
  add({
    name: `upload PUT ?digest= with ${what} → 400 DIGEST_INVALID`,
    category: 'digest',
    request: ({ seed }) => ({ method: 'PUT', path: `${seed.session.path}?digest=${digest}` }),
    status: 400,
    code: 'DIGEST_INVALID',
  });
}
for (const [what, digest] of BAD_DIGESTS.slice(0, 3)) {
  add({ name: `blob HEAD by a digest with ${what} → 400 (no body)`, category: 'digest', request: ({ seed }) => ({ method: 'HEAD', path: `/v2/${seed.repo}/blobs/${digest}` }), status: 400 });
}
for (const [what, digest] of [BAD_DIGESTS[0], BAD_DIGESTS[4], BAD_DIGESTS[9]]) {
  add({
    name: `mount of a digest with ${what} → 400 DIGEST_INVALID`,
    category: 'digest',
    request: ({ seed }) => ({ method: 'POST', path: `/v2/${seed.repo}/blobs/uploads/?mount=${digest}&from=${seed.other}` }),
    status: 400,
    code: 'DIGEST_INVALID',
  });
}
add({
  name: 'referrers GET for a tag instead of a digest → 400 DIGEST_INVALID',
  category: 'digest',
  request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/referrers/v1` }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'referrers HEAD for a malformed digest → 400 (no body)',
  category: 'digest',
  request: ({ seed }) => ({ method: 'HEAD', path: `/v2/${seed.repo}/referrers/sha256:abc` }),
  status: 400,
});
add({
  name: 'manifest PUT by sha256 digest whose body has another digest → 400 DIGEST_INVALID',
  category: 'digest',
  request: ({ seed }) => putManifest(seed, seed.image.body, OCI_MANIFEST, UNKNOWN_SHA256),
  status: 400,
  code: 'DIGEST_INVALID',
  message: /does not match/,
});
add({
  name: 'manifest PUT by the digest of an existing manifest with a different body → 400 DIGEST_INVALID',
  category: 'digest',
  request: ({ seed }) => putManifest(seed, Buffer.concat([seed.image.body, Buffer.from('\n')]), OCI_MANIFEST, seed.image.digest),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'manifest PUT by sha512 digest whose body has another sha512 → 400 DIGEST_INVALID',
  category: 'digest',
  request: ({ seed }) => putManifest(seed, seed.image.body, OCI_MANIFEST, UNKNOWN_SHA512),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'manifest PUT by sha512 digest of the body with one byte changed → 400 DIGEST_INVALID',
  category: 'digest',
  request: ({ seed }) => putManifest(seed, seed.image.body, OCI_MANIFEST, sha512Of(Buffer.concat([seed.image.body.subarray(0, -1), Buffer.from(' ')]))),
  status: 400,
  code: 'DIGEST_INVALID',
});

// ---------------------------------------------------------------------------------------------------------------
// Manifest documents.

type DocCase = [string, (seed: Seed) => Buffer | string, RegExp, string?];
const json = (doc: unknown) => JSON.stringify(doc);

const DOCUMENT_CASES: DocCase[] = [
  ['that is not JSON', () => 'not json at all', /not valid JSON/],
  ['with an empty body', () => '', /not valid JSON/],
  ['that is truncated JSON', (s) => json(image(s)).slice(0, 80), /not valid JSON/],
  ['with garbage after the JSON', (s) => `${json(image(s))} trailing`, /not valid JSON/],
  ['with a trailing comma', (s) => json(image(s)).replace(/}$/, ',}'), /not valid JSON/],
  ['with single-quoted strings', () => "{'schemaVersion':2}", /not valid JSON/],
  ['that is a JSON array', () => '[]', /must be a JSON object/],
  ['that is a JSON array of the manifest', (s) => json([image(s)]), /must be a JSON object/],
  ['that is a JSON string', () => '"manifest"', /must be a JSON object/],
  ['that is JSON null', () => 'null', /must be a JSON object/],
  ['that is a JSON number', () => '2', /must be a JSON object/],
  ['that is invalid UTF-8', () => Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), /UTF-8/],
  ['with an overlong UTF-8 sequence in a string', () => Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]), /UTF-8/],
  ['encoded as UTF-16', (s) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(json(image(s)), 'utf16le')]), /UTF-8/],
  ['with a lone surrogate byte sequence', () => Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), /UTF-8/],
  ['with schemaVersion 1', (s) => json(image(s, { schemaVersion: 1 })), /schema 1/],
  ['with schemaVersion 3', (s) => json(image(s, { schemaVersion: 3 })), /schemaVersion must be 2/],
  ['without schemaVersion', (s) => json(image(s, { schemaVersion: undefined })), /schemaVersion must be 2/],
  ['with schemaVersion "2" (a string)', (s) => json(image(s, { schemaVersion: '2' })), /schemaVersion must be 2/],
  ['with schemaVersion null', (s) => json(image(s, { schemaVersion: null })), /schemaVersion must be 2/],
  ['with schemaVersion 2.5', (s) => json(image(s, { schemaVersion: 2.5 })), /schemaVersion must be 2/],
  ['with schemaVersion -2', (s) => json(image(s, { schemaVersion: -2 })), /schemaVersion must be 2/],
  ['whose mediaType (index) differs from Content-Type (manifest)', (s) => json(image(s, { mediaType: OCI_INDEX })), /does not match the Content-Type/],
  ['whose mediaType (Docker v2) differs from Content-Type (OCI)', (s) => json(image(s, { mediaType: MediaTypes.dockerManifest })), /does not match the Content-Type/],
  ['whose mediaType differs from Content-Type only in case', (s) => json(image(s, { mediaType: OCI_MANIFEST.toUpperCase() })), /does not match the Content-Type/],
  ['whose mediaType (manifest) differs from Content-Type (index)', (s) => json(image(s)), /does not match the Content-Type/, OCI_INDEX],
  ['whose mediaType is a number', (s) => json(image(s, { mediaType: 2 })), /mediaType must be a string/],
  ['with an unknown mediaType (also the Content-Type)', (s) => json(image(s, { mediaType: 'application/vnd.example.thing+json' })), /unsupported manifest media type/, 'application/vnd.example.thing+json'],
  ['with no mediaType and Content-Type application/json', (s) => json(image(s, { mediaType: undefined })), /unsupported manifest media type/, 'application/json'],
  ['with no mediaType and Content-Type text/plain', (s) => json(image(s, { mediaType: undefined })), /unsupported manifest media type/, 'text/plain'],
  ['of Docker schema 1 (signed)', () => json({ schemaVersion: 1, name: 'seed/app', tag: 'v1', fsLayers: [] }), /schema 1/, MediaTypes.dockerSchema1Signed],
  ['with schemaVersion 2 but the Docker schema 1 media type', (s) => json(image(s, { mediaType: MediaTypes.dockerSchema1 })), /unsupported manifest media type/, MediaTypes.dockerSchema1],
  ['with both layers and manifests', (s) => json(image(s, { manifests: index(s).manifests })), /both layers and manifests/],
  ['of an index with both layers and manifests', (s) => json(index(s, { layers: [descriptor(s.layer, LAYER_TYPE)] })), /both layers and manifests/, OCI_INDEX],
  ['of an image with manifests instead of layers', (s) => json(image(s, { layers: undefined, manifests: index(s).manifests })), /cannot have manifests/],
  ['of an index with layers instead of manifests', (s) => json(index(s, { manifests: undefined, layers: [descriptor(s.layer, LAYER_TYPE)] })), /index cannot have config or layers/, OCI_INDEX],
  ['of an index with a config', (s) => json(index(s, { config: descriptor(s.config, CONFIG_TYPE) })), /index cannot have config or layers/, OCI_INDEX],
  ['without a config', (s) => json(image(s, { config: undefined })), /config must be a descriptor object/],
  ['whose config is a digest string', (s) => json(image(s, { config: s.config.digest })), /config must be a descriptor object/],
  ['whose config is an array', (s) => json(image(s, { config: [descriptor(s.config, CONFIG_TYPE)] })), /config must be a descriptor object/],
  ['whose config digest is malformed', (s) => json(image(s, { config: configWith(s, { digest: 'sha256:1234' }) })), /config.digest is not a valid digest/],
  ['whose config digest has an unknown algorithm', (s) => json(image(s, { config: configWith(s, { digest: `md5:${hex(32)}` }) })), /config.digest is not a valid digest/],
  ['whose config has no digest', (s) => json(image(s, { config: configWith(s, { digest: undefined }) })), /config.digest is missing/],
  ['whose config digest is a number', (s) => json(image(s, { config: configWith(s, { digest: 12345 }) })), /config.digest is missing/],
  ['whose config size is negative', (s) => json(image(s, { config: configWith(s, { size: -1 }) })), /config.size must be a non-negative integer/],
  ['whose config size is not an integer', (s) => json(image(s, { config: configWith(s, { size: 1.5 }) })), /config.size must be a non-negative integer/],
  ['whose config size is a string', (s) => json(image(s, { config: configWith(s, { size: String(s.config.size) }) })), /config.size must be a non-negative integer/],
  ['whose config size is beyond 2^53', (s) => json(image(s, { config: configWith(s, { size: 2 ** 53 }) })), /config.size must be a non-negative integer/],
  ['whose config has no size', (s) => json(image(s, { config: configWith(s, { size: undefined }) })), /config.size must be a non-negative integer/],
  ['whose config has no mediaType', (s) => json(image(s, { config: configWith(s, { mediaType: undefined }) })), /config.mediaType is missing or not a media type/],
  ['whose config mediaType is not a media type', (s) => json(image(s, { config: configWith(s, { mediaType: 'not a media type' }) })), /config.mediaType is missing or not a media type/],
  ['whose layers is an object', (s) => json(image(s, { layers: { 0: descriptor(s.layer, LAYER_TYPE) } })), /layers must be an array/],
  ['without layers', (s) => json(image(s, { layers: undefined })), /layers must be an array/],
  ['whose layers is null', (s) => json(image(s, { layers: null })), /layers must be an array/],
  ['whose layers is a string', (s) => json(image(s, { layers: s.layer.digest })), /layers must be an array/],
  ['with a null layer', (s) => json(image(s, { layers: [null] })), /layers\[0\] must be a descriptor object/],
  ['whose second layer has an uppercase-hex digest', (s) => json(image(s, { layers: [descriptor(s.layer, LAYER_TYPE), layerWith(s, { digest: s.layer.digest.toUpperCase().replace('SHA256', 'sha256') })] })), /layers\[1\].digest is not a valid digest/],
  ['whose layer has a sha512 digest of sha256 length', (s) => json(image(s, { layers: [layerWith(s, { digest: `sha512:${s.layer.digest.slice(7)}` })] })), /layers\[0\].digest is not a valid digest/],
  ['whose layer size is negative', (s) => json(image(s, { layers: [layerWith(s, { size: -1000 })] })), /layers\[0\].size must be a non-negative integer/],
  ['whose layer data is not base64', (s) => json(image(s, { layers: [layerWith(s, { data: 'not base64!' })] })), /layers\[0\].data must be base64/],
  ['whose layer data is a number', (s) => json(image(s, { layers: [layerWith(s, { data: 7 })] })), /layers\[0\].data must be base64/],
  ['whose layer data has another length than its size', (s) => json(image(s, { layers: [layerWith(s, { data: s.layer.data.subarray(0, 999).toString('base64') })] })), /data length does not match size/],
  ['whose layer data does not match its digest', (s) => json(image(s, { layers: [layerWith(s, { data: Buffer.alloc(1000, 1).toString('base64') })] })), /data does not match digest/],
  ['whose config data does not match its sha512 digest', (s) => json(image(s, { config: configWith(s, { digest: UNKNOWN_SHA512, data: s.config.data.toString('base64') }) })), /config.data does not match digest/],
  ['whose annotations have a number value', (s) => json(image(s, { annotations: { 'org.example.n': 1 } })), /manifest.annotations must be a map of strings/],
  ['whose annotations are an array', (s) => json(image(s, { annotations: ['a', 'b'] })), /manifest.annotations must be a map of strings/],
  ['whose annotations have a null value', (s) => json(image(s, { annotations: { a: null } })), /manifest.annotations must be a map of strings/],
  ['whose layer annotations have an object value', (s) => json(image(s, { layers: [layerWith(s, { annotations: { a: { b: 'c' } } })] })), /layers\[0\].annotations must be a map of strings/],
  ['whose artifactType is not a media type', (s) => json(image(s, { artifactType: 'just-a-word' })), /artifactType is not a media type/],
  ['whose config artifactType is a number', (s) => json(image(s, { config: configWith(s, { artifactType: 5 }) })), /config.artifactType is not a media type/],
  ['whose subject is a string', (s) => json(image(s, { subject: s.image.digest })), /subject must be a descriptor object/],
  ['whose subject digest is malformed', (s) => json(image(s, { subject: { mediaType: OCI_MANIFEST, digest: 'sha256:xyz', size: 10 } })), /subject.digest is not a valid digest/],
  ['whose layer urls is a string', (s) => json(image(s, { layers: [layerWith(s, { urls: 'https://example.com/layer' })] })), /layers\[0\].urls must be an array of strings/],
  ['whose layer urls holds a number', (s) => json(image(s, { layers: [layerWith(s, { urls: [1] })] })), /layers\[0\].urls must be an array of strings/],
  ['of an index whose manifests is an object', (s) => json(index(s, { manifests: {} })), /manifests must be an array/, OCI_INDEX],
  ['of an index without manifests', (s) => json(index(s, { manifests: undefined })), /manifests must be an array/, OCI_INDEX],
  ['of an index whose child has a negative size', (s) => json(index(s, { manifests: [{ mediaType: OCI_MANIFEST, digest: s.image.digest, size: -5 }] })), /manifests\[0\].size must be a non-negative integer/, OCI_INDEX],
  ['of an index whose child has no mediaType', (s) => json(index(s, { manifests: [{ digest: s.image.digest, size: s.image.body.length }] })), /manifests\[0\].mediaType is missing/, OCI_INDEX],
  ['of an index whose child platform has no os', (s) => json(index(s, { manifests: [{ mediaType: OCI_MANIFEST, digest: s.image.digest, size: s.image.body.length, platform: { architecture: 'amd64' } }] })), /manifests\[0\].platform must name os and architecture/, OCI_INDEX],
  ['of an index whose child is a number', () => json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [42] }), /manifests\[0\] must be a descriptor object/, OCI_INDEX],
  ['that is a raw array nested 100 deep', () => nested(100, 'array'), /nests deeper than/],
  ['that is an object nested 100 deep', () => nested(100, 'object'), /nests deeper than/],
  ['of an index whose manifests[0] nests 100 indexes deep', () => nestedIndex(100), /nests deeper than/, OCI_INDEX],
  [`whose annotations nest one level past the limit (${MAX_MANIFEST_DEPTH + 1})`, (s) => json(image(s)).replace(/}$/, `,"annotations":{"a":${nested(MAX_MANIFEST_DEPTH - 1, 'object')}}}`), /nests deeper than/],
  ['that opens 100000 arrays and never closes them', () => '['.repeat(100_000), /nests deeper than/],
];

for (const [what, body, message, contentType] of DOCUMENT_CASES) {
  const ct = contentType ?? OCI_MANIFEST;
  add({
    name: `manifest PUT ${what}${contentType ? ` (Content-Type ${contentType})` : ''} → 400 MANIFEST_INVALID`,
    category: 'manifest-document',
    request: ({ seed }) => putManifest(seed, body(seed), ct),
    status: 400,
    code: 'MANIFEST_INVALID',
    message,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Manifest size: the 4 MiB cap, with honest and dishonest framing.

add({
  name: 'manifest PUT of 4 MiB + 1 junk bytes with an honest Content-Length → 413 SIZE_INVALID',
  category: 'manifest-size',
  request: ({ seed }) => putManifest(seed, Buffer.alloc(MIB4 + 1, 0x78)),
  status: 413,
  code: 'SIZE_INVALID',
});
add({
  name: 'manifest PUT of a well-formed manifest padded to 4 MiB + 1 → 413 SIZE_INVALID',
  category: 'manifest-size',
  request: ({ seed }) => putManifest(seed, paddedManifest(seed, MIB4 + 1)),
  status: 413,
  code: 'SIZE_INVALID',
});
add({
  name: 'manifest PUT of 4 MiB + 1 sent chunked, with no Content-Length → 413 SIZE_INVALID',
  category: 'manifest-size',
  request: ({ seed }) => putManifest(seed, paddedManifest(seed, MIB4 + 1), OCI_MANIFEST, 'bad', { kind: 'chunked' }),
  status: 413,
  code: 'SIZE_INVALID',
});
add({
  name: 'manifest PUT chunked past 4 MiB that never ends → 413 SIZE_INVALID as soon as the cap is passed',
  category: 'manifest-size',
  request: ({ seed }) => putManifest(seed, Buffer.alloc(MIB4 + 64 * 1024, 0x20), OCI_MANIFEST, 'bad', { kind: 'chunked', terminate: false }),
  status: 413,
  code: 'SIZE_INVALID',
});
add({
  name: 'manifest PUT declaring 4 MiB + 1 but sending 1 KiB and waiting → 413 SIZE_INVALID before the body is read',
  category: 'manifest-size',
  request: ({ seed }) => putManifest(seed, Buffer.alloc(1024, 0x20), OCI_MANIFEST, 'bad', { kind: 'declared', declared: MIB4 + 1 }),
  status: 413,
  code: 'SIZE_INVALID',
});
add({
  name: 'manifest PUT declaring a Content-Length of 1 TB → 413 SIZE_INVALID',
  category: 'manifest-size',
  request: ({ seed }) => putManifest(seed, Buffer.alloc(16, 0x20), OCI_MANIFEST, 'bad', { kind: 'declared', declared: 1e12 }),
  status: 413,
  code: 'SIZE_INVALID',
});
add({
  name: 'manifest PUT by digest of a 4 MiB + 1 manifest whose digest matches → 413 SIZE_INVALID',
  category: 'manifest-size',
  request: ({ seed }) => {
    const body = paddedManifest(seed, MIB4 + 1);
    return putManifest(seed, body, OCI_MANIFEST, sha256Of(body));
  },
  status: 413,
  code: 'SIZE_INVALID',
});

// ---------------------------------------------------------------------------------------------------------------
// Missing references.

add({ name: 'manifest GET of an unknown tag → 404 MANIFEST_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/manifests/nope` }), status: 404, code: 'MANIFEST_UNKNOWN' });
add({ name: 'manifest GET of an unknown digest → 404 MANIFEST_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/manifests/${UNKNOWN_SHA256}` }), status: 404, code: 'MANIFEST_UNKNOWN' });
add({ name: 'manifest GET of an unknown sha512 digest → 404 MANIFEST_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/manifests/${UNKNOWN_SHA512}` }), status: 404, code: 'MANIFEST_UNKNOWN' });
add({ name: 'manifest HEAD of an unknown tag → 404 (no body)', category: 'missing-reference', request: ({ seed }) => ({ method: 'HEAD', path: `/v2/${seed.repo}/manifests/nope` }), status: 404 });
add({ name: 'manifest GET of a tag in an unknown repository → 404 MANIFEST_UNKNOWN', category: 'missing-reference', request: () => ({ method: 'GET', path: '/v2/no/such/repo/manifests/v1' }), status: 404, code: 'MANIFEST_UNKNOWN' });
add({ name: 'manifest GET by the digest of a layer blob → 404 MANIFEST_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/manifests/${seed.layer.digest}` }), status: 404, code: 'MANIFEST_UNKNOWN' });
add({
  name: 'manifest GET with an Accept header that admits no stored type → 404 MANIFEST_UNKNOWN',
  category: 'missing-reference',
  request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/manifests/v1`, headers: { Accept: 'text/plain' } }),
  status: 404,
  code: 'MANIFEST_UNKNOWN',
});
add({ name: 'manifest DELETE of an unknown tag → 404 MANIFEST_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'DELETE', path: `/v2/${seed.repo}/manifests/nope` }), status: 404, code: 'MANIFEST_UNKNOWN' });
add({ name: 'manifest DELETE of an unknown digest → 404 MANIFEST_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'DELETE', path: `/v2/${seed.repo}/manifests/${UNKNOWN_SHA256}` }), status: 404, code: 'MANIFEST_UNKNOWN' });
add({ name: 'manifest DELETE in an unknown repository → 404 MANIFEST_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'DELETE', path: `/v2/no/such/repo/manifests/${seed.image.digest}` }), status: 404, code: 'MANIFEST_UNKNOWN' });
add({ name: 'tags list of an unknown repository → 404 NAME_UNKNOWN', category: 'missing-reference', request: () => ({ method: 'GET', path: '/v2/no/such/repo/tags/list' }), status: 404, code: 'NAME_UNKNOWN' });
add({ name: 'tags list of an unknown repository with a 255-character name → 404 NAME_UNKNOWN', category: 'missing-reference', request: () => ({ method: 'GET', path: `/v2/${'n'.repeat(255)}/tags/list` }), status: 404, code: 'NAME_UNKNOWN' });
add({ name: 'tags list HEAD of an unknown repository → 404 (no body)', category: 'missing-reference', request: () => ({ method: 'HEAD', path: '/v2/no/such/repo/tags/list' }), status: 404 });
add({ name: 'blob GET of an unknown digest → 404 BLOB_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/blobs/${UNKNOWN_SHA256}` }), status: 404, code: 'BLOB_UNKNOWN' });
add({ name: 'blob GET of an unknown sha512 digest → 404 BLOB_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/blobs/${UNKNOWN_SHA512}` }), status: 404, code: 'BLOB_UNKNOWN' });
add({ name: 'blob HEAD of an unknown digest → 404 (no body)', category: 'missing-reference', request: ({ seed }) => ({ method: 'HEAD', path: `/v2/${seed.repo}/blobs/${UNKNOWN_SHA256}` }), status: 404 });
add({ name: 'blob GET of a blob linked only into another repository → 404 BLOB_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/blobs/${seed.foreign.digest}` }), status: 404, code: 'BLOB_UNKNOWN' });
add({ name: 'blob GET by the digest of a manifest → 404 BLOB_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/blobs/${seed.image.digest}` }), status: 404, code: 'BLOB_UNKNOWN' });
add({ name: 'blob GET in an unknown repository → 404 BLOB_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'GET', path: `/v2/no/such/repo/blobs/${seed.layer.digest}` }), status: 404, code: 'BLOB_UNKNOWN' });
add({ name: 'blob DELETE of an unknown digest → 404 BLOB_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'DELETE', path: `/v2/${seed.repo}/blobs/${UNKNOWN_SHA256}` }), status: 404, code: 'BLOB_UNKNOWN' });
add({ name: 'blob DELETE of a blob linked only into another repository → 404 BLOB_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'DELETE', path: `/v2/${seed.repo}/blobs/${seed.foreign.digest}` }), status: 404, code: 'BLOB_UNKNOWN' });
add({ name: 'blob DELETE in an unknown repository → 404 BLOB_UNKNOWN', category: 'missing-reference', request: ({ seed }) => ({ method: 'DELETE', path: `/v2/no/such/repo/blobs/${seed.layer.digest}` }), status: 404, code: 'BLOB_UNKNOWN' });

const MISSING_BLOB = makeBlob('a config nobody pushed');
add({
  name: 'manifest PUT whose config blob was never pushed → 400 MANIFEST_BLOB_UNKNOWN',
  category: 'missing-reference',
  request: ({ seed }) => putManifest(seed, json(image(seed, { config: descriptor(MISSING_BLOB, CONFIG_TYPE) }))),
  status: 400,
  code: 'MANIFEST_BLOB_UNKNOWN',
});
add({
  name: 'manifest PUT whose second layer was never pushed → 400 MANIFEST_BLOB_UNKNOWN',
  category: 'missing-reference',
  request: ({ seed }) => putManifest(seed, json(image(seed, { layers: [descriptor(seed.layer, LAYER_TYPE), descriptor(MISSING_BLOB, LAYER_TYPE)] }))),
  status: 400,
  code: 'MANIFEST_BLOB_UNKNOWN',
});
add({
  name: 'manifest PUT whose layer is linked only into another repository → 400 MANIFEST_BLOB_UNKNOWN',
  category: 'missing-reference',
  request: ({ seed }) => putManifest(seed, json(image(seed, { layers: [descriptor(seed.foreign, LAYER_TYPE)] }))),
  status: 400,
  code: 'MANIFEST_BLOB_UNKNOWN',
});
add({
  name: 'manifest PUT into a new repository referencing blobs it does not have → 400 MANIFEST_BLOB_UNKNOWN (no repository created)',
  category: 'missing-reference',
  request: ({ seed }) => ({ ...putManifest(seed, seed.image.body), path: '/v2/brand/new/manifests/v1' }),
  status: 400,
  code: 'MANIFEST_BLOB_UNKNOWN',
});
add({
  name: 'index PUT whose child manifest does not exist → 400 MANIFEST_BLOB_UNKNOWN',
  category: 'missing-reference',
  request: ({ seed }) => putManifest(seed, json(index(seed, { manifests: [{ mediaType: OCI_MANIFEST, digest: UNKNOWN_SHA256, size: 500 }] })), OCI_INDEX),
  status: 400,
  code: 'MANIFEST_BLOB_UNKNOWN',
});
add({
  name: 'index PUT whose child is a layer blob, not a manifest → 400 MANIFEST_BLOB_UNKNOWN',
  category: 'missing-reference',
  request: ({ seed }) => putManifest(seed, json(index(seed, { manifests: [...(index(seed).manifests as unknown[]), descriptor(seed.layer, OCI_MANIFEST)] })), OCI_INDEX),
  status: 400,
  code: 'MANIFEST_BLOB_UNKNOWN',
});
add({
  name: 'index PUT whose sha512 child does not exist → 400 MANIFEST_BLOB_UNKNOWN',
  category: 'missing-reference',
  request: ({ seed }) => putManifest(seed, json(index(seed, { manifests: [{ mediaType: OCI_MANIFEST, digest: UNKNOWN_SHA512, size: 500 }] })), OCI_INDEX),
  status: 400,
  code: 'MANIFEST_BLOB_UNKNOWN',
});

// ---------------------------------------------------------------------------------------------------------------
// Upload sessions: chunk order, Content-Range, digests, session ids.

const rangeHeader = (ctx: CaseContext) => ({ range: `0-${ctx.seed.session.offset - 1}` });
const chunk = (seed: Seed, from: number, to: number) => seed.sessionBlob.data.subarray(from, to);

function patchSession(seed: Seed, contentRange: string | undefined, body: Buffer): WireRequest {
  return {
    method: 'PATCH',
    path: seed.session.path,
    headers: { 'Content-Type': 'application/octet-stream', ...(contentRange === undefined ? {} : { 'Content-Range': contentRange }) },
    body,
  };
}

const PATCH_RANGE_CASES: Array<[string, string, (seed: Seed) => Buffer]> = [
  ['a gap (starts past the current offset)', '1500-1999', (s) => chunk(s, 1500, 2000)],
  ['a one-byte gap', '1001-1999', (s) => chunk(s, 1001, 2000)],
  ['the first chunk repeated', '0-999', (s) => chunk(s, 0, 1000)],
  ['an overlap with what is written', '500-1499', (s) => chunk(s, 500, 1500)],
  ['a one-byte overlap', '999-1998', (s) => chunk(s, 999, 1999)],
  ['an inverted range (end < start)', '1999-1000', (s) => chunk(s, 1000, 2000)],
  ['a start but no end', '1000-', (s) => chunk(s, 1000, 2000)],
  ['an end but no start', '-1999', (s) => chunk(s, 1000, 2000)],
  ['no range at all', 'abc', (s) => chunk(s, 1000, 2000)],
  ['a non-numeric total', 'bytes 1000-1999/abc', (s) => chunk(s, 1000, 2000)],
  ['a negative start', '-1000-1999', (s) => chunk(s, 1000, 2000)],
  ['an end of 20 digits', '1000-99999999999999999999', (s) => chunk(s, 1000, 2000)],
  ['a length (1000) other than the Content-Length (500)', '1000-1999', (s) => chunk(s, 1000, 1500)],
  ['a length (1) other than the Content-Length (1000)', '1000-1000', (s) => chunk(s, 1000, 2000)],
];
for (const [what, contentRange, body] of PATCH_RANGE_CASES) {
  add({
    name: `upload PATCH with a Content-Range of ${what} → 416 RANGE_INVALID, offset unchanged`,
    category: 'upload',
    request: ({ seed }) => patchSession(seed, contentRange, body(seed)),
    status: 416,
    code: 'RANGE_INVALID',
    headers: rangeHeader,
  });
}
add({
  name: 'upload PATCH of a fresh session with a Content-Range not starting at 0 → 416 RANGE_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ ...patchSession(seed, '1-1000', chunk(seed, 1, 1001)), path: seed.fresh.path }),
  status: 416,
  code: 'RANGE_INVALID',
  headers: () => ({ range: '0-0' }),
});
/** Setup: opens a session in a repository of its own (created by the POST); resolves with the session's path. */
async function openSessionInNewRepository(port: number, repository: string): Promise<string> {
  const res = await send(port, { method: 'POST', path: `/v2/${repository}/blobs/uploads/` });
  if (res.status !== 202) throw new Error(`setup: opening a session in ${repository} answered ${res.status}`);
  return String(res.headers.location);
}
add({
  name: 'upload PATCH to a session just opened in a new repository, with a chunk not starting at 0 → 416 RANGE_INVALID',
  category: 'upload',
  setup: (port) => openSessionInNewRepository(port, 'setup/gap'),
  request: ({ seed }, sessionPath) => ({ ...patchSession(seed, '100-199', chunk(seed, 100, 200)), path: sessionPath }),
  status: 416,
  code: 'RANGE_INVALID',
  headers: () => ({ range: '0-0' }),
});
add({
  name: 'upload PUT of an empty chunked body (as oras sends) with the digest of non-empty content, into a just-opened session → 400 DIGEST_INVALID',
  category: 'upload',
  setup: (port) => openSessionInNewRepository(port, 'setup/empty'),
  request: ({ seed }, sessionPath) => ({ method: 'PUT', path: `${sessionPath}?digest=${seed.layer.digest}`, body: Buffer.alloc(0), framing: { kind: 'chunked' } }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'upload PUT whose final chunk leaves a gap → 416 RANGE_INVALID',
  category: 'upload',
  request: ({ seed }) => ({
    method: 'PUT',
    path: `${seed.session.path}?digest=${seed.sessionBlob.digest}`,
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '1500-1999' },
    body: chunk(seed, 1500, 2000),
  }),
  status: 416,
  code: 'RANGE_INVALID',
  headers: rangeHeader,
});
add({
  name: 'upload PUT whose final chunk overlaps what is written → 416 RANGE_INVALID',
  category: 'upload',
  request: ({ seed }) => ({
    method: 'PUT',
    path: `${seed.session.path}?digest=${seed.sessionBlob.digest}`,
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-1999' },
    body: seed.sessionBlob.data,
  }),
  status: 416,
  code: 'RANGE_INVALID',
  headers: rangeHeader,
});
add({
  name: 'upload PUT without the digest parameter → 400 DIGEST_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'PUT', path: seed.session.path }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'upload PUT with an empty digest parameter → 400 DIGEST_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'PUT', path: `${seed.session.path}?digest=` }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'upload PUT with the digest parameter given twice → 400 BLOB_UPLOAD_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'PUT', path: `${seed.session.path}?digest=${seed.sessionBlob.digest}&digest=${UNKNOWN_SHA256}` }),
  status: 400,
  code: 'BLOB_UPLOAD_INVALID',
});
add({
  name: 'upload PUT with a wrong sha256 digest for the bytes written → 400 DIGEST_INVALID, session kept as it was',
  category: 'upload',
  request: ({ seed }) => ({ method: 'PUT', path: `${seed.session.path}?digest=${seed.sessionBlob.digest}` }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'upload PUT with a wrong sha512 digest for the bytes written → 400 DIGEST_INVALID, session kept as it was',
  category: 'upload',
  request: ({ seed }) => ({ method: 'PUT', path: `${seed.session.path}?digest=${sha512Of(seed.sessionBlob.data)}` }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'upload PUT of a whole body into a fresh session with a wrong digest → 400 DIGEST_INVALID, session kept as it was',
  category: 'upload',
  request: ({ seed }) => ({ method: 'PUT', path: `${seed.fresh.path}?digest=${UNKNOWN_SHA256}`, headers: { 'Content-Type': 'application/octet-stream' }, body: seed.sessionBlob.data }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'upload PUT of a whole chunked body into a fresh session with a wrong sha512 digest → 400 DIGEST_INVALID',
  category: 'upload',
  request: ({ seed }) => ({
    method: 'PUT',
    path: `${seed.fresh.path}?digest=${UNKNOWN_SHA512}`,
    headers: { 'Content-Type': 'application/octet-stream' },
    body: seed.sessionBlob.data,
    framing: { kind: 'chunked' },
  }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'upload PUT of an empty body into a fresh session with the digest of non-empty content → 400 DIGEST_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'PUT', path: `${seed.fresh.path}?digest=${seed.layer.digest}` }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'monolithic POST ?digest= with a body that does not match → 400 DIGEST_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'POST', path: `/v2/${seed.repo}/blobs/uploads/?digest=${UNKNOWN_SHA256}`, headers: { 'Content-Type': 'application/octet-stream' }, body: randomBytes(4096) }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'monolithic POST ?digest= (sha512) with a body that does not match → 400 DIGEST_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'POST', path: `/v2/${seed.repo}/blobs/uploads/?digest=${UNKNOWN_SHA512}`, headers: { 'Content-Type': 'application/octet-stream' }, body: seed.layer.data }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'monolithic POST ?digest= of an existing blob with a truncated body → 400 DIGEST_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'POST', path: `/v2/${seed.other}/blobs/uploads/?digest=${seed.layer.digest}`, headers: { 'Content-Type': 'application/octet-stream' }, body: seed.layer.data.subarray(0, 999) }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'monolithic POST ?digest= with an empty body and the digest of non-empty content → 400 DIGEST_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'POST', path: `/v2/${seed.repo}/blobs/uploads/?digest=${seed.layer.digest}`, headers: { 'Content-Length': '0' } }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'monolithic POST ?digest= sent chunked with a body that does not match → 400 DIGEST_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'POST', path: `/v2/${seed.repo}/blobs/uploads/?digest=${UNKNOWN_SHA256}`, body: randomBytes(300_000), framing: { kind: 'chunked' } }),
  status: 400,
  code: 'DIGEST_INVALID',
});
add({
  name: 'monolithic POST with the digest parameter given twice → 400 BLOB_UPLOAD_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'POST', path: `/v2/${seed.repo}/blobs/uploads/?digest=${seed.layer.digest}&digest=${UNKNOWN_SHA256}`, body: seed.layer.data }),
  status: 400,
  code: 'BLOB_UPLOAD_INVALID',
});
add({
  name: 'mount with the mount parameter given twice → 400 BLOB_UPLOAD_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'POST', path: `/v2/${seed.repo}/blobs/uploads/?mount=${seed.foreign.digest}&mount=${seed.layer.digest}&from=${seed.other}` }),
  status: 400,
  code: 'BLOB_UPLOAD_INVALID',
});
add({
  name: 'mount with the from parameter given twice → 400 BLOB_UPLOAD_INVALID',
  category: 'upload',
  request: ({ seed }) => ({ method: 'POST', path: `/v2/${seed.repo}/blobs/uploads/?mount=${seed.foreign.digest}&from=${seed.other}&from=${seed.third}` }),
  status: 400,
  code: 'BLOB_UPLOAD_INVALID',
});

const UNKNOWN_UUID = '0b5e8f2c-1d3a-4c6e-9f70-123456789abc';
const BAD_UPLOAD_IDS: Array<[string, (seed: Seed) => string]> = [
  ['that is not a UUID', () => 'not-a-uuid'],
  ['that is a UUID nobody opened', () => UNKNOWN_UUID],
  ['that is an uppercase spelling of an open session', (s) => s.session.id.toUpperCase()],
  ['of `..`', () => '..'],
  ['with SQL in it', () => "x'%20OR%20'1'='1"],
  ['that is an open session with a suffix', (s) => `${s.session.id}0`],
];
for (const [what, id] of BAD_UPLOAD_IDS) {
  add({
    name: `upload PATCH to a session id ${what} → 404 BLOB_UPLOAD_UNKNOWN`,
    category: 'upload',
    request: ({ seed }) => ({ method: 'PATCH', path: `/v2/${seed.repo}/blobs/uploads/${id(seed)}`, headers: { 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(10) }),
    status: 404,
    code: 'BLOB_UPLOAD_UNKNOWN',
  });
}
for (const [what, id] of BAD_UPLOAD_IDS.slice(0, 3)) {
  add({ name: `upload GET of a session id ${what} → 404 BLOB_UPLOAD_UNKNOWN`, category: 'upload', request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/blobs/uploads/${id(seed)}` }), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' });
  add({
    name: `upload PUT to a session id ${what} → 404 BLOB_UPLOAD_UNKNOWN`,
    category: 'upload',
    request: ({ seed }) => ({ method: 'PUT', path: `/v2/${seed.repo}/blobs/uploads/${id(seed)}?digest=${seed.sessionBlob.digest}` }),
    status: 404,
    code: 'BLOB_UPLOAD_UNKNOWN',
  });
  add({ name: `upload DELETE of a session id ${what} → 404 BLOB_UPLOAD_UNKNOWN`, category: 'upload', request: ({ seed }) => ({ method: 'DELETE', path: `/v2/${seed.repo}/blobs/uploads/${id(seed)}` }), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' });
}
add({
  name: 'upload PATCH to a session of another repository → 404 BLOB_UPLOAD_UNKNOWN',
  category: 'upload',
  request: ({ seed }) => ({ method: 'PATCH', path: `/v2/${seed.repo}/blobs/uploads/${seed.otherSession.id}`, headers: { 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(10) }),
  status: 404,
  code: 'BLOB_UPLOAD_UNKNOWN',
});
add({
  name: 'upload PUT completing a session of another repository → 404 BLOB_UPLOAD_UNKNOWN',
  category: 'upload',
  request: ({ seed }) => ({ method: 'PUT', path: `/v2/${seed.repo}/blobs/uploads/${seed.otherSession.id}?digest=${seed.empty.digest}` }),
  status: 404,
  code: 'BLOB_UPLOAD_UNKNOWN',
});
add({
  name: 'upload DELETE cancelling a session of another repository → 404 BLOB_UPLOAD_UNKNOWN',
  category: 'upload',
  request: ({ seed }) => ({ method: 'DELETE', path: `/v2/${seed.third}/blobs/uploads/${seed.session.id}` }),
  status: 404,
  code: 'BLOB_UPLOAD_UNKNOWN',
});
add({
  name: 'upload GET of a session of another repository → 404 BLOB_UPLOAD_UNKNOWN',
  category: 'upload',
  request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.other}/blobs/uploads/${seed.session.id}` }),
  status: 404,
  code: 'BLOB_UPLOAD_UNKNOWN',
});
add({
  name: 'upload HEAD of an unknown session → 404 (no body)',
  category: 'upload',
  request: ({ seed }) => ({ method: 'HEAD', path: `/v2/${seed.repo}/blobs/uploads/${UNKNOWN_UUID}` }),
  status: 404,
});

// ---------------------------------------------------------------------------------------------------------------
// Blob Range requests that cannot be satisfied.

const unsatisfiable = (size: number) => () => ({ 'content-range': `bytes */${size}` });
for (const [what, range] of [
  ['starting at the size', 'bytes=1000-'],
  ['wholly past the end', 'bytes=5000-6000'],
  ['inverted (bytes=500-0)', 'bytes=500-0'],
  ['inverted by one (bytes=10-9)', 'bytes=10-9'],
  ['a zero-length suffix (bytes=-0)', 'bytes=-0'],
  ['starting at 10^21', 'bytes=999999999999999999999-'],
] as const) {
  add({
    name: `blob GET with a Range ${what} → 416 RANGE_INVALID with Content-Range bytes */size`,
    category: 'range',
    request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/blobs/${seed.layer.digest}`, headers: { Range: range } }),
    status: 416,
    code: 'RANGE_INVALID',
    headers: unsatisfiable(1000),
  });
}
add({
  name: 'blob HEAD with a Range starting past the end → 416 with Content-Range bytes */size (no body)',
  category: 'range',
  request: ({ seed }) => ({ method: 'HEAD', path: `/v2/${seed.repo}/blobs/${seed.layer.digest}`, headers: { Range: 'bytes=2000-' } }),
  status: 416,
  headers: unsatisfiable(1000),
});
add({
  name: 'blob GET of a zero-length blob with Range bytes=0-0 → 416 RANGE_INVALID with Content-Range bytes */0',
  category: 'range',
  request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/blobs/${seed.empty.digest}`, headers: { Range: 'bytes=0-0' } }),
  status: 416,
  code: 'RANGE_INVALID',
  headers: unsatisfiable(0),
});
add({
  name: 'blob GET of a zero-length blob with a suffix Range bytes=-1 → 416 RANGE_INVALID with Content-Range bytes */0',
  category: 'range',
  request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/blobs/${seed.empty.digest}`, headers: { Range: 'bytes=-1' } }),
  status: 416,
  code: 'RANGE_INVALID',
  headers: unsatisfiable(0),
});

// ---------------------------------------------------------------------------------------------------------------
// Pagination: n and last on tags/list and _catalog.

const BAD_N: Array<[string, string]> = [
  ['n=-1', 'n=-1'],
  ['n=abc', 'n=abc'],
  ['n=1.5', 'n=1.5'],
  ['an empty n', 'n='],
  ['n=1e3', 'n=1e3'],
  ['n=0x10', 'n=0x10'],
  ['n=+5', 'n=%2B5'],
  ['n with a space', 'n=%201'],
  ['n given twice', 'n=1&n=2'],
  ['last given twice', 'last=a&last=b'],
];
for (const [what, query] of BAD_N) {
  add({
    name: `tags list with ${what} → 400 PAGINATION_NUMBER_INVALID`,
    category: 'pagination',
    request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/tags/list?${query}` }),
    status: 400,
    code: 'PAGINATION_NUMBER_INVALID',
  });
}
for (const [what, query] of BAD_N.slice(0, 3).concat([BAD_N[8]])) {
  add({
    name: `catalog with ${what} → 400 PAGINATION_NUMBER_INVALID`,
    category: 'pagination',
    request: () => ({ method: 'GET', path: `/v2/_catalog?${query}` }),
    status: 400,
    code: 'PAGINATION_NUMBER_INVALID',
  });
}
add({ name: 'catalog HEAD with n=abc → 400 (no body)', category: 'pagination', request: () => ({ method: 'HEAD', path: '/v2/_catalog?n=abc' }), status: 400 });
add({ name: 'tags list HEAD with n=-1 → 400 (no body)', category: 'pagination', request: ({ seed }) => ({ method: 'HEAD', path: `/v2/${seed.repo}/tags/list?n=-1` }), status: 400 });

function clampedTags(res: WireResponse, { seed }: CaseContext): void {
  const body = JSON.parse(res.text) as { name: string; tags: string[] };
  expect(body.name).toBe(seed.repo);
  expect(body.tags).toEqual(seed.tags.slice(0, seed.maxPageSize));
  expect(res.headers.link).toBe(`</v2/${seed.repo}/tags/list?n=${seed.maxPageSize}&last=${seed.tags[seed.maxPageSize - 1]}>; rel="next"`);
}
function clampedCatalog(res: WireResponse, { seed }: CaseContext): void {
  const body = JSON.parse(res.text) as { repositories: string[] };
  expect(body.repositories.length).toBe(seed.maxPageSize);
  expect(res.headers.link).toMatch(new RegExp(`^</v2/_catalog\\?n=${seed.maxPageSize}&last=`));
}
add({ name: 'tags list with n=10^9 → 200, clamped to registry.maxPageSize with a Link', category: 'pagination', request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/tags/list?n=1000000000` }), status: 200, check: clampedTags });
add({ name: 'tags list with n of 20 digits → 200, clamped to registry.maxPageSize with a Link', category: 'pagination', request: ({ seed }) => ({ method: 'GET', path: `/v2/${seed.repo}/tags/list?n=${'9'.repeat(20)}` }), status: 200, check: clampedTags });
add({ name: 'catalog with n=10^9 → 200, clamped to registry.maxPageSize with a Link', category: 'pagination', request: () => ({ method: 'GET', path: '/v2/_catalog?n=1000000000' }), status: 200, check: clampedCatalog });
add({ name: 'catalog with n of 400 digits → 200, clamped to registry.maxPageSize with a Link', category: 'pagination', request: () => ({ method: 'GET', path: `/v2/_catalog?n=${'9'.repeat(400)}` }), status: 200, check: clampedCatalog });

// ---------------------------------------------------------------------------------------------------------------
// Routes: unknown paths and wrong methods.

for (const [what, path] of [
  ['a path outside /v2/ (`/` itself is the console\'s redirect)', '/nothing-here'],
  ['/v3/', '/v3/'],
  ['/V2/ in uppercase', '/V2/'],
  ['/v2/_catalogue', '/v2/_catalogue'],
  ['/v2/_catalog/ with more after it', '/v2/_catalog/extra'],
  ['a repository with no endpoint', '/v2/seed/app'],
  ['manifests/ with no reference', '/v2/seed/app/manifests/'],
  ['blobs/ with no digest', '/v2/seed/app/blobs/'],
  ['tags without list', '/v2/seed/app/tags'],
  ['tags/list with more after it', '/v2/seed/app/tags/list/extra'],
  ['a reference with a slash in it', '/v2/seed/app/manifests/v1/extra'],
  ['referrers/ with no digest', '/v2/seed/app/referrers/'],
] as const) {
  add({ name: `GET ${what} → 404 NOT_FOUND`, category: 'route', request: () => ({ method: 'GET', path }), status: 404, code: 'NOT_FOUND' });
}
add({ name: 'HEAD of an unknown path → 404 (no body)', category: 'route', request: () => ({ method: 'HEAD', path: '/v2/seed/app/nothing' }), status: 404 });

const allow = (methods: string) => () => ({ allow: methods });
for (const [what, method, path, methods] of [
  ['POST on tags/list', 'POST', (s: Seed) => `/v2/${s.repo}/tags/list`, 'GET, HEAD'],
  ['DELETE on tags/list', 'DELETE', (s: Seed) => `/v2/${s.repo}/tags/list`, 'GET, HEAD'],
  ['PUT on _catalog', 'PUT', () => '/v2/_catalog', 'GET, HEAD'],
  ['DELETE on /v2/', 'DELETE', () => '/v2/', 'GET, HEAD'],
  ['POST on a manifest', 'POST', (s: Seed) => `/v2/${s.repo}/manifests/v1`, 'GET, HEAD, PUT, DELETE'],
  ['PATCH on a manifest', 'PATCH', (s: Seed) => `/v2/${s.repo}/manifests/v1`, 'GET, HEAD, PUT, DELETE'],
  ['OPTIONS on a manifest', 'OPTIONS', (s: Seed) => `/v2/${s.repo}/manifests/v1`, 'GET, HEAD, PUT, DELETE'],
  ['PUT on a blob', 'PUT', (s: Seed) => `/v2/${s.repo}/blobs/${s.layer.digest}`, 'GET, HEAD, DELETE'],
  ['POST on a blob', 'POST', (s: Seed) => `/v2/${s.repo}/blobs/${s.layer.digest}`, 'GET, HEAD, DELETE'],
  ['GET on the upload start', 'GET', (s: Seed) => `/v2/${s.repo}/blobs/uploads/`, 'POST'],
  ['PUT on the upload start', 'PUT', (s: Seed) => `/v2/${s.repo}/blobs/uploads/`, 'POST'],
  ['PATCH on the upload start without a slash', 'PATCH', (s: Seed) => `/v2/${s.repo}/blobs/uploads`, 'POST'],
  ['POST on an upload session', 'POST', (s: Seed) => s.session.path, 'GET, HEAD, PATCH, PUT, DELETE'],
  ['DELETE on referrers', 'DELETE', (s: Seed) => `/v2/${s.repo}/referrers/${s.image.digest}`, 'GET, HEAD'],
  ['PUT on referrers', 'PUT', (s: Seed) => `/v2/${s.repo}/referrers/${s.image.digest}`, 'GET, HEAD'],
] as const) {
  add({
    name: `${what} → 405 UNSUPPORTED with Allow: ${methods}`,
    category: 'route',
    request: ({ seed }) => ({ method, path: path(seed) }),
    status: 405,
    code: 'UNSUPPORTED',
    headers: allow(methods),
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Deletes on a registry with registry.deleteEnabled=false.

for (const [what, path] of [
  ['an existing tag', (l: LockedSeed) => `/v2/${l.repo}/manifests/${l.tag}`],
  ['an existing manifest by digest', (l: LockedSeed) => `/v2/${l.repo}/manifests/${l.image.digest}`],
  ['an existing blob', (l: LockedSeed) => `/v2/${l.repo}/blobs/${l.layer.digest}`],
  ['an unknown manifest', (l: LockedSeed) => `/v2/${l.repo}/manifests/${UNKNOWN_SHA256}`],
  ['a blob by a malformed digest', (l: LockedSeed) => `/v2/${l.repo}/blobs/sha256:abc`],
  ['a manifest in an unknown repository', () => '/v2/no/such/repo/manifests/v1'],
] as const) {
  add({
    name: `DELETE of ${what} with deletes disabled → 405 UNSUPPORTED`,
    category: 'delete-disabled',
    target: 'locked',
    request: ({ locked }) => ({ method: 'DELETE', path: path(locked) }),
    status: 405,
    code: 'UNSUPPORTED',
  });
}

/** The corpus. */
export const BAD_INPUT_CASES: readonly BadInputCase[] = cases;
