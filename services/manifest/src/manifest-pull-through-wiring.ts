/**
 * Manifest pull-through as a manifest service is wired with it, in the embedded registry and in a distributed
 * manifest process alike: the pull-through itself over the service's dependencies, its misses single-flighted
 * across replicas (fetch leases), and the recorder of last-pulled times (started here, flushed on close). A
 * fetched manifest's blobs are not fetched with it (they are blob misses when a client asks for them), so the
 * manifest service never needs the blob service's pull-through, in either mode.
 */
import { durationMs } from '@lading/config';
import type { ServiceDeps } from '@lading/runtime';
import { type ProxyRules, createFetchLeases } from '@lading/upstream';
import { type ManifestPullThrough, createManifestPullThrough } from './manifest-pull-through';
import { type PullRecorder, PULL_FLUSH_INTERVAL_MS, createPullRecorder } from './pull-recorder';

/** Manifest pull-through and its pull recorder, running, and a way to stop them. */
export interface WiredManifestPullThrough {
  pullThrough: ManifestPullThrough;
  /** The last-pulled times of proxied manifests, flushed periodically (and on close). */
  pulls: PullRecorder;
  close(): Promise<void>;
}

/** Wires manifest pull-through and starts its pull recorder. */
export function wireManifestPullThrough(deps: ServiceDeps, proxies: ProxyRules): WiredManifestPullThrough {
  const pullThrough = createManifestPullThrough({
    writes: { db: deps.db, events: deps.events, reviewDelayMs: durationMs(deps.config.gc.reviewDelay) },
    proxies,
    maxBytes: deps.config.registry.manifestMaxBytes,
    logger: deps.logger,
    onEventsCommitted: deps.onEventsCommitted,
    metrics: deps.metrics,
    // Misses are fetched once across manifest replicas: the one holding the reference's lease asks the upstream.
    leases: createFetchLeases({ db: deps.db, logger: deps.logger }),
  });
  const pulls = createPullRecorder({ db: deps.db, logger: deps.logger, flushIntervalMs: PULL_FLUSH_INTERVAL_MS, metrics: deps.metrics });
  pulls.start();
  return { pullThrough, pulls, close: () => pulls.stop() };
}
