/** Reading images through the OCI Distribution API: manifests by tag or digest, blobs, referrers. */
import { type Api, repositoryPath } from './api';
import type { Descriptor, ImageIndex, ImageManifest } from './types';

/** The manifest media types the console can show, in the order it asks for them. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

const INDEX_MEDIA_TYPES = new Set<string>(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

/** A manifest as fetched: its digest (the server's Docker-Content-Digest), media type and body. */
export type FetchedManifest =
  | { kind: 'index'; digest: string; mediaType: string; body: ImageIndex }
  | { kind: 'image'; digest: string; mediaType: string; body: ImageManifest };

/** A tag or a digest as the registry's routes match it (`sha256:…` with its colon as it is). */
const REFERENCE = /^[A-Za-z0-9_][A-Za-z0-9._:+=-]*$/;

/**
 * The path of a registry API route for a repository: `/v2/<name>/<kind>/<reference>`. A tag or digest goes as it is
 * (the registry's grammar does not decode `%3A`); anything else is encoded, for the registry to refuse.
 */
export function registryPath(name: string, kind: 'manifests' | 'blobs' | 'referrers', reference: string): string {
  return `/v2/${repositoryPath(name)}/${kind}/${REFERENCE.test(reference) ? reference : encodeURIComponent(reference)}`;
}

/** Fetches a manifest by tag or digest. */
export async function fetchManifest(api: Api, name: string, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
  const response = await api.request(registryPath(name, 'manifests', reference), {
    headers: { Accept: MANIFEST_MEDIA_TYPES.join(', ') },
    signal,
  });
  const body = (await response.json()) as ImageIndex & ImageManifest;
  const mediaType = body.mediaType ?? response.headers.get('Content-Type')?.split(';')[0] ?? '';
  const digest = response.headers.get('Docker-Content-Digest') ?? (reference.includes(':') ? reference : '');
  if (INDEX_MEDIA_TYPES.has(mediaType) || Array.isArray(body.manifests)) return { kind: 'index', digest, mediaType, body };
  return { kind: 'image', digest, mediaType, body: { ...body, layers: body.layers ?? [] } };
}

/** Fetches a blob's content as JSON (an image config, a JSON artifact). */
export async function fetchJsonBlob<T>(api: Api, name: string, digest: string, signal?: AbortSignal): Promise<T> {
  return api.json<T>(registryPath(name, 'blobs', digest), { signal });
}

/** The manifests that refer to `digest` (signatures, SBOMs, scan reports), from the referrers API. */
export async function fetchReferrers(api: Api, name: string, digest: string, signal?: AbortSignal): Promise<Descriptor[]> {
  const index = await api.json<ImageIndex>(registryPath(name, 'referrers', digest), { signal });
  return index.manifests ?? [];
}

/** Deletes a tag or a manifest by digest. */
export async function deleteManifest(api: Api, name: string, reference: string): Promise<void> {
  await api.request(registryPath(name, 'manifests', reference), { method: 'DELETE' });
}

/** A descriptor's platform as `os/architecture[/variant]`, or "unknown". */
export function platformOf(descriptor: Descriptor): string {
  const p = descriptor.platform;
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Whether a media type's content is JSON that the blob viewer can show. */
export function isJsonMediaType(mediaType: string): boolean {
  return /(^application\/json$|\+json$|\.json$|json;)/.test(mediaType) || mediaType.endsWith('/json');
}

/** The commands that pull `name` at `reference` from `host`, by client. */
export function pullCommands(host: string, name: string, reference: string): Array<{ client: string; command: string }> {
  const ref = reference.includes(':') ? `${host}/${name}@${reference}` : `${host}/${name}:${reference}`;
  return [
    { client: 'docker', command: `docker pull ${ref}` },
    { client: 'podman', command: `podman pull ${ref}` },
    { client: 'crane', command: `crane pull ${ref} ${name.split('/').pop() ?? 'image'}.tar` },
  ];
}
