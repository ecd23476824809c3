/**
 * What a CI system cares about in a registry event: "this tag of this repository now points at this digest".
 * Read from either body a Lading webhook sends: a CloudEvent (`io.lading.tag.updated`) or CNCF Distribution's
 * notification envelope (`{"events":[{"action":"push","target":{"tag":...}}]}`), so a receiver written for
 * Distribution's registry keeps working when pointed at Lading.
 */

/** A tag that now points at a manifest. */
export interface TagPush {
  repository: string;
  tag: string;
  digest: string;
  /** The event's id (the CloudEvents id, or the Distribution event id). */
  eventId: string;
}

/** The event type that announces a tag pointing at a manifest (its first push, or a move). */
export const TAG_UPDATED = 'io.lading.tag.updated';

/** Manifest media types: a Distribution `push` of one of these with a tag is a tag push (blob pushes are not). */
const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const str = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? value : null);

function fromCloudEvent(event: Json): TagPush[] {
  if (event.type !== TAG_UPDATED || !isObject(event.data)) return [];
  const repository = str(event.data.repository);
  const tag = str(event.data.tag);
  const digest = str(event.data.digest);
  const eventId = str(event.id);
  return repository && tag && digest && eventId ? [{ repository, tag, digest, eventId }] : [];
}

function fromDistributionEvent(event: unknown): TagPush[] {
  if (!isObject(event) || event.action !== 'push' || !isObject(event.target)) return [];
  const target = event.target;
  const repository = str(target.repository);
  const tag = str(target.tag);
  const digest = str(target.digest);
  const mediaType = str(target.mediaType);
  const eventId = str(event.id);
  if (!repository || !tag || !digest || !eventId || !mediaType || !MANIFEST_TYPES.has(mediaType)) return [];
  return [{ repository, tag, digest, eventId }];
}

/** The tag pushes a delivery body announces; throws SyntaxError when the body is not JSON. */
export function tagPushesOf(body: string): TagPush[] {
  const doc = JSON.parse(body) as unknown;
  if (!isObject(doc)) return [];
  if (Array.isArray(doc.events)) return doc.events.flatMap(fromDistributionEvent);
  if (doc.specversion === '1.0') return fromCloudEvent(doc);
  return [];
}

/** Compiles a glob over repository names or tags: `*` within one path segment, `**` across segments, `?` one character. */
export function globPattern(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
