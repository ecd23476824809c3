/**
 * Manifest and index validation: turns the bytes a client PUTs into a typed, checked document, or a
 * MANIFEST_INVALID error that says what is wrong. Existence of referenced content is checked by the caller.
 */
import { createHash } from 'node:crypto';
import { parseDigest } from './digest';
import { OciError } from './errors';
import { MANIFEST_KINDS, MEDIA_TYPE_GRAMMAR, ManifestKind, MediaTypes, NON_DISTRIBUTABLE_LAYER_TYPES } from './media-types';
import { findUnstorableText } from './text';

/** The deepest JSON nesting a manifest may have; real manifests stay under 6. */
export const MAX_MANIFEST_DEPTH = 32;

/** A validated content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: unknown;
  urls?: string[];
  data?: string;
}

/** A reference from a manifest to content that must exist for the manifest to be accepted. */
export interface ManifestReference {
  /** `blob` for config and layers, `manifest` for an index's children. */
  kind: 'blob' | 'manifest';
  role: 'config' | 'layer' | 'child';
  descriptor: Descriptor;
  /** False for foreign (non-distributable) layers, whose blobs the registry never holds. */
  mustExist: boolean;
}

/** A manifest that passed validation. */
export interface ValidatedManifest {
  mediaType: string;
  kind: ManifestKind;
  /** The artifact type: the manifest's `artifactType`, else (for images) the config's media type. */
  artifactType: string | null;
  subject: Descriptor | null;
  references: ManifestReference[];
  annotations: Record<string, string> | null;
}

function invalid(message: string, detail?: unknown): OciError {
  return new OciError('MANIFEST_INVALID', message, detail);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Rejects documents nested deeper than the limit before JSON.parse sees them. */
function assertShallow(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_MANIFEST_DEPTH) throw invalid(`manifest nests deeper than ${MAX_MANIFEST_DEPTH} levels`);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}

function validateAnnotations(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw invalid(`${where}.annotations must be a map of strings`);
  }
  return value as Record<string, string>;
}

function validateMediaType(value: unknown, where: string): string {
  if (typeof value !== 'string' || !MEDIA_TYPE_GRAMMAR.test(value)) throw invalid(`${where}.mediaType is missing or not a media type`);
  return value;
}

/** Validates one descriptor, including its embedded `data` against its digest and size. */
export function validateDescriptor(value: unknown, where: string): Descriptor {
  if (!isPlainObject(value)) throw invalid(`${where} must be a descriptor object`);
  const mediaType = validateMediaType(value.mediaType, where);
  if (typeof value.digest !== 'string') throw invalid(`${where}.digest is missing`);
  let digest;
  try {
    digest = parseDigest(value.digest);
  } catch {
    throw invalid(`${where}.digest is not a valid digest`, { digest: String(value.digest).slice(0, 200) });
  }
  const size = value.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where}.size must be a non-negative integer`);
  const descriptor: Descriptor = { mediaType, digest: digest.value, size };
  if (value.artifactType !== undefined) {
    if (typeof value.artifactType !== 'string' || !MEDIA_TYPE_GRAMMAR.test(value.artifactType)) throw invalid(`${where}.artifactType is not a media type`);
    descriptor.artifactType = value.artifactType;
  }
  const annotations = validateAnnotations(value.annotations, where);
  if (annotations) descriptor.annotations = annotations;
  if (value.platform !== undefined) {
    if (!isPlainObject(value.platform) || typeof value.platform.os !== 'string' || typeof value.platform.architecture !== 'string') {
      throw invalid(`${where}.platform must name os and architecture`);
    }
    descriptor.platform = value.platform;
  }
  if (value.urls !== undefined) {
    if (!Array.isArray(value.urls) || value.urls.some((u) => typeof u !== 'string')) throw invalid(`${where}.urls must be an array of strings`);
    descriptor.urls = value.urls as string[];
  }
  if (value.data !== undefined) {
    if (typeof value.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value.data) || value.data.length % 4 !== 0) {
      throw invalid(`${where}.data must be base64`);
    }
    const bytes = Buffer.from(value.data, 'base64');
    if (bytes.length !== size) throw invalid(`${where}.data length does not match size`);
    if (createHash(digest.algorithm).update(bytes).digest('hex') !== digest.encoded) throw invalid(`${where}.data does not match digest`);
    descriptor.data = value.data;
  }
  return descriptor;
}

/**
 * Parses and validates a manifest or index.
 * @param body the raw bytes the client sent
 * @param contentType the request's Content-Type (without parameters), or undefined
 */
export function validateManifest(body: Buffer, contentType: string | undefined): ValidatedManifest {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw invalid('manifest is not valid UTF-8');
  }
  assertShallow(text);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalid('manifest is not valid JSON');
  }
  if (!isPlainObject(doc)) throw invalid('manifest must be a JSON object');
  // JSON can escape U+0000 and lone surrogates, but the registry stores a manifest's strings (annotations today, the
  // search read model tomorrow) in Postgres, which can hold neither: refuse them anywhere in the document.
  const unstorable = findUnstorableText(doc, '', MAX_MANIFEST_DEPTH + 1);
  if (unstorable !== null) {
    throw invalid(`manifest strings must not contain U+0000 or unpaired UTF-16 surrogates (found in ${unstorable})`, { field: unstorable });
  }
  if (doc.schemaVersion !== 2) {
    if (doc.schemaVersion === 1) throw invalid('Docker schema 1 manifests are not supported');
    throw invalid('schemaVersion must be 2', { schemaVersion: doc.schemaVersion ?? null });
  }
  if (doc.mediaType !== undefined && typeof doc.mediaType !== 'string') throw invalid('mediaType must be a string');
  const declared = doc.mediaType as string | undefined;
  if (declared !== undefined && contentType !== undefined && declared !== contentType) {
    throw invalid('manifest mediaType does not match the Content-Type header', { mediaType: declared, contentType });
  }
  if (doc.layers !== undefined && doc.manifests !== undefined) throw invalid('a manifest cannot have both layers and manifests');
  const mediaType = declared ?? contentType ?? (doc.manifests !== undefined ? MediaTypes.ociIndex : MediaTypes.ociManifest);
  const kind = MANIFEST_KINDS[mediaType];
  if (!kind) throw invalid(`unsupported manifest media type ${mediaType.slice(0, 200)}`);

  const annotations = validateAnnotations(doc.annotations, 'manifest') ?? null;
  let artifactType: string | null = null;
  if (doc.artifactType !== undefined) {
    if (typeof doc.artifactType !== 'string' || !MEDIA_TYPE_GRAMMAR.test(doc.artifactType)) throw invalid('artifactType is not a media type');
    artifactType = doc.artifactType;
  }
  const subject = doc.subject === undefined ? null : validateDescriptor(doc.subject, 'subject');
  const references: ManifestReference[] = [];

  if (kind === 'image') {
    if (doc.manifests !== undefined) throw invalid('an image manifest cannot have manifests');
    const config = validateDescriptor(doc.config, 'config');
    references.push({ kind: 'blob', role: 'config', descriptor: config, mustExist: true });
    if (!Array.isArray(doc.layers)) throw invalid('layers must be an array');
    doc.layers.forEach((layer, i) => {
      const descriptor = validateDescriptor(layer, `layers[${i}]`);
      const foreign = (descriptor.urls !== undefined && descriptor.urls.length > 0) || NON_DISTRIBUTABLE_LAYER_TYPES.has(descriptor.mediaType);
      references.push({ kind: 'blob', role: 'layer', descriptor, mustExist: !foreign });
    });
    artifactType ??= config.mediaType;
  } else {
    if (doc.layers !== undefined || doc.config !== undefined) throw invalid('an index cannot have config or layers');
    if (!Array.isArray(doc.manifests)) throw invalid('manifests must be an array');
    doc.manifests.forEach((child, i) => {
      const descriptor = validateDescriptor(child, `manifests[${i}]`);
      references.push({ kind: 'manifest', role: 'child', descriptor, mustExist: true });
    });
  }
  return { mediaType, kind, artifactType, subject, references, annotations };
}
