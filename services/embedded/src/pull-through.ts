/**
 * The pull-through cache of the embedded registry, wired from the same factories a distributed blob and manifest
 * process use (`blobPullThroughOf`, `wireManifestPullThrough`, over `openProxyRules`): one set of proxy rules (and so
 * one client per upstream) shared by the blob service, which fetches blob misses, and the manifest service, which
 * fetches manifest misses and, for the blobs a fetched manifest references, asks the blob service's pull-through in
 * the same process.
 */
import { type BlobPullThrough, blobPullThroughOf } from '@lading/blob';
import { type ManifestPullThrough, type PullRecorder, wireManifestPullThrough } from '@lading/manifest';
import { type ServiceDeps, openProxyRules } from '@lading/runtime';
import type { BlobStore } from '@lading/storage';

/** Both halves of the pull-through cache (undefined when no proxies are configured) and a way to close them. */
export interface WiredPullThrough {
  blob: BlobPullThrough | undefined;
  manifest: ManifestPullThrough | undefined;
  /** Whether a repository lies in a proxy namespace (the mirror never rewrites those). */
  covers(repository: string): boolean;
  /** The last-pulled times of proxied manifests, flushed periodically (and on close). */
  pulls: PullRecorder | undefined;
  close(): Promise<void>;
}

/** Builds the pull-through cache from the blob and manifest services' dependencies; nothing when `proxies` is empty. */
export function createPullThrough(blobDeps: ServiceDeps, manifestDeps: ServiceDeps, store: BlobStore): WiredPullThrough {
  const proxies = openProxyRules(blobDeps.config);
  if (!proxies) return { blob: undefined, manifest: undefined, covers: () => false, pulls: undefined, close: async () => undefined };
  const blob = blobPullThroughOf(blobDeps, store, proxies);
  const manifest = wireManifestPullThrough(manifestDeps, proxies, (repository, digest, context) => blob.ensure(repository, digest, context));
  return {
    blob,
    manifest: manifest.pullThrough,
    covers: (repository) => proxies.namespaceOf(repository) !== null,
    pulls: manifest.pulls,
    async close() {
      await manifest.close();
      await proxies.close();
    },
  };
}
