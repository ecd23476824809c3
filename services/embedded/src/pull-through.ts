/**
 * The pull-through cache of the embedded registry, wired from the same factories a distributed blob and manifest
 * process use (`blobPullThroughOf`, `wireManifestPullThrough`) over the process's live proxy rules
 * (`openProxyRules`: config and stored): the blob service fetches blob misses, the manifest service fetches
 * manifest misses (lazily: a fetched manifest's blobs are blob misses when a client asks for them).
 */
import { type BlobPullThrough, blobPullThroughOf } from '@lading/blob';
import { type ManifestPullThrough, type PullRecorder, wireManifestPullThrough } from '@lading/manifest';
import type { ServiceDeps } from '@lading/runtime';
import type { BlobStore } from '@lading/storage';
import type { ProxyRules } from '@lading/upstream';

/** Both halves of the pull-through cache and a way to stop them. */
export interface WiredPullThrough {
  blob: BlobPullThrough;
  manifest: ManifestPullThrough;
  /** Whether a repository lies in a proxy namespace (the mirror never rewrites those). */
  covers(repository: string): boolean;
  /** The last-pulled times of proxied manifests, flushed periodically (and on close). */
  pulls: PullRecorder;
  /** Stops the pull recorder (flushing it); the caller owns and closes `proxies`. */
  close(): Promise<void>;
}

/**
 * Builds the pull-through cache from the blob and manifest services' dependencies and the live rules. It is always
 * wired, even with no rule yet, since one may be stored through the admin API at run time.
 */
export function createPullThrough(blobDeps: ServiceDeps, manifestDeps: ServiceDeps, store: BlobStore, proxies: ProxyRules): WiredPullThrough {
  const blob = blobPullThroughOf(blobDeps, store, proxies);
  const manifest = wireManifestPullThrough(manifestDeps, proxies);
  return {
    blob,
    manifest: manifest.pullThrough,
    covers: (repository) => proxies.namespaceOf(repository) !== null,
    pulls: manifest.pulls,
    close: () => manifest.close(),
  };
}
