/**
 * The pull-through cache of the embedded registry, wired: one set of proxy rules (and so one client per upstream)
 * shared by the blob service, which fetches blob misses, and the manifest service, which fetches manifest misses
 * (lazily: a fetched manifest's blobs are blob misses when a client asks for them).
 */
import { durationMs } from '@lading/config';
import { type BlobPullThrough, createBlobPullThrough } from '@lading/blob';
import { type ManifestPullThrough, type PullRecorder, PULL_FLUSH_INTERVAL_MS, createManifestPullThrough, createPullRecorder } from '@lading/manifest';
import type { ServiceDeps } from '@lading/runtime';
import type { BlobStore } from '@lading/storage';
import { type ProxyRules, createProxyRules } from '@lading/upstream';

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

/**
 * Builds the pull-through cache from the blob and manifest services' dependencies. With `live` (the process's live
 * rules, config and stored: the caller owns and closes them) it is always wired, since a rule may be added at run
 * time; without, over `config.proxies`, and nothing when that is empty.
 */
export function createPullThrough(blobDeps: ServiceDeps, manifestDeps: ServiceDeps, store: BlobStore, live?: ProxyRules): WiredPullThrough {
  const { config } = blobDeps;
  if (!live && config.proxies.length === 0) return { blob: undefined, manifest: undefined, covers: () => false, pulls: undefined, close: async () => undefined };
  const proxies = live ?? createProxyRules(config.proxies);
  const reviewDelayMs = durationMs(config.gc.reviewDelay);
  const blob = createBlobPullThrough({
    writes: { db: blobDeps.db, store, events: blobDeps.events, reviewDelayMs },
    proxies,
    logger: blobDeps.logger,
    onEventsCommitted: blobDeps.onEventsCommitted,
    metrics: blobDeps.metrics,
  });
  const manifest = createManifestPullThrough({
    writes: { db: manifestDeps.db, events: manifestDeps.events, reviewDelayMs },
    proxies,
    maxBytes: config.registry.manifestMaxBytes,
    logger: manifestDeps.logger,
    onEventsCommitted: manifestDeps.onEventsCommitted,
    metrics: manifestDeps.metrics,
  });
  const pulls = createPullRecorder({ db: manifestDeps.db, logger: manifestDeps.logger, flushIntervalMs: PULL_FLUSH_INTERVAL_MS, metrics: manifestDeps.metrics });
  pulls.start();
  return {
    blob,
    manifest,
    covers: (repository) => proxies.namespaceOf(repository) !== null,
    pulls,
    async close() {
      await pulls.stop();
      if (!live) await proxies.close();
    },
  };
}
