/**
 * What search knows about a manifest, taken when it is pushed (never at query time): the OCI annotations
 * `org.opencontainers.image.{title,description,source}`, and for an image its config's labels and platform; for an
 * index, its children's platforms.
 *
 * Why the config is read during the push, before its transaction, and not later from the `manifest.pushed` event: the
 * config is small and already stored (the push is refused without it), so one bounded read makes the metadata part of
 * the push's own transaction: searchable the moment the push is answered, in both modes, with no consumer, no
 * backlog and nothing to replay. Reading before the transaction keeps no row lock (and, embedded, no database) held
 * during storage I/O. The read is best effort: a config that is missing, too large, slow or not JSON leaves the labels
 * and platform empty and never fails the push. A config the push then refuses (not linked to the repository) is read
 * but never recorded.
 */
import type { ImageMetadata } from '@lading/metadata';
import { MediaTypes, ValidatedManifest, isStorableText } from '@lading/oci';
import { type BlobStore, blobKey } from '@lading/storage';
import type { Logger } from '@lading/telemetry';

/** The largest image config read for its labels; image configs are kilobytes, a long history tens of them. */
export const CONFIG_READ_LIMIT = 1 << 20;

/** How long a push waits for its config to be read before it goes on without the labels. */
export const CONFIG_READ_TIMEOUT_MS = 2000;

/** The image config media types whose `config.Labels` are read. */
const IMAGE_CONFIG_TYPES: ReadonlySet<string> = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/** Bounds on what is kept from annotations and labels: enough to show and search, never a stored novel. */
const MAX_TEXT = { title: 256, description: 2048, source: 1024 } as const;
const MAX_LABELS = 128;
const MAX_LABEL_KEY = 256;
const MAX_LABEL_VALUE = 2048;

/** Reads an image config blob, or null when it cannot (missing, larger than the limit, store failing, too slow). */
export interface ConfigReader {
  read(digest: string, size: number): Promise<Buffer | null>;
}

/** A config reader over the blob store: at most `CONFIG_READ_LIMIT` bytes, within `CONFIG_READ_TIMEOUT_MS`. */
export function createConfigReader(store: BlobStore, logger: Logger, limits = { bytes: CONFIG_READ_LIMIT, timeoutMs: CONFIG_READ_TIMEOUT_MS }): ConfigReader {
  async function readAll(digest: string, size: number, signal: AbortSignal): Promise<Buffer> {
    const stream = await store.read(blobKey(digest), { start: 0, end: size - 1 });
    const chunks: Buffer[] = [];
    let length = 0;
    try {
      for await (const chunk of stream) {
        if (signal.aborted) throw new Error('timed out');
        chunks.push(chunk as Buffer);
        length += (chunk as Buffer).length;
        if (length > limits.bytes) throw new Error('config larger than its descriptor says');
      }
    } finally {
      stream.destroy();
    }
    // A config of at most the limit (a megabyte): joined once, parsed once.
    return Buffer.concat(chunks, length);
  }
  return {
    async read(digest, size) {
      if (size <= 0 || size > limits.bytes) return null;
      const timeout = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          readAll(digest, size, timeout.signal),
          new Promise<null>((resolve) => {
            timer = setTimeout(() => {
              timeout.abort();
              resolve(null);
            }, limits.timeoutMs);
          }),
        ]);
      } catch (err) {
        logger.warn({ err, digest }, 'the image config could not be read for search; the manifest is indexed without its labels');
        return null;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function text(value: unknown, max: number): string | null {
  if (typeof value !== 'string' || value.trim() === '' || !isStorableText(value)) return null;
  return value.length > max ? value.slice(0, max) : value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `os/architecture[/variant]` of a platform object, or null when it names none (or `unknown`, as attestations do). */
function platformOf(value: unknown): string | null {
  if (!isRecord(value)) return null;
  const { os, architecture, variant } = value;
  if (typeof os !== 'string' || typeof architecture !== 'string' || os === 'unknown' || architecture === 'unknown') return null;
  const name = typeof variant === 'string' && variant !== '' ? `${os}/${architecture}/${variant}` : `${os}/${architecture}`;
  return name.length <= 128 && isStorableText(name) ? name : null;
}

/** The string labels of a parsed image config (bounded), and its platform. */
function readConfig(config: Buffer): { labels: Record<string, string>; platform: string | null } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(config.toString('utf8'));
  } catch {
    return { labels: {}, platform: null };
  }
  if (!isRecord(parsed)) return { labels: {}, platform: null };
  const labels: Record<string, string> = {};
  const raw = isRecord(parsed.config) && isRecord(parsed.config.Labels) ? parsed.config.Labels : {};
  for (const [key, value] of Object.entries(raw)) {
    if (Object.keys(labels).length >= MAX_LABELS) break;
    if (typeof value !== 'string' || key.length > MAX_LABEL_KEY || !isStorableText(key) || !isStorableText(value)) continue;
    labels[key] = value.slice(0, MAX_LABEL_VALUE);
  }
  return { labels, platform: platformOf(parsed) };
}

/**
 * The search metadata of a validated manifest: its annotations, and (when `configs` is given and the manifest is an
 * image) its config's labels and platform; the annotations win over labels of the same name. Never throws.
 */
export async function describeManifest(manifest: ValidatedManifest, configs: ConfigReader | undefined): Promise<ImageMetadata> {
  let labels: Record<string, string> = {};
  const platforms = new Set<string>();
  if (manifest.kind === 'index') {
    for (const ref of manifest.references) {
      const platform = ref.role === 'child' ? platformOf(ref.descriptor.platform) : null;
      if (platform) platforms.add(platform);
    }
  } else {
    const config = manifest.references.find((r) => r.role === 'config')?.descriptor;
    if (configs && config && IMAGE_CONFIG_TYPES.has(config.mediaType) && manifest.mediaType !== MediaTypes.dockerSchema1) {
      const bytes = await configs.read(config.digest, config.size);
      if (bytes) {
        const read = readConfig(bytes);
        labels = read.labels;
        if (read.platform) platforms.add(read.platform);
      }
    }
  }
  const said = (key: string) => manifest.annotations?.[key] ?? labels[key];
  return {
    mediaType: manifest.mediaType,
    artifactType: manifest.artifactType,
    title: text(said('org.opencontainers.image.title'), MAX_TEXT.title),
    description: text(said('org.opencontainers.image.description'), MAX_TEXT.description),
    source: text(said('org.opencontainers.image.source'), MAX_TEXT.source),
    labels,
    platforms: [...platforms].sort(),
  };
}
