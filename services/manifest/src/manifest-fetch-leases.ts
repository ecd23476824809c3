/**
 * Single flight of manifest misses across processes (manifest replicas), as a decorator of manifest pull-through:
 * a read of a reference not stored takes the reference's fetch lease (`createFetchLeases`) before the pull-through
 * asks the upstream; a process that finds the lease held waits until the reference is stored and then prepares it
 * as a hit (a tag is then checked with a cheap HEAD, as a tag no process has checked yet). Within a process, one
 * lease wait per reference is shared by every concurrent read of it.
 *
 * Reads of stored content (hits and the tag re-checks after `tagTtl`) take no lease: the decorator costs them one
 * lookup, and misses a few statements more.
 */
import type { EventContext } from '@lading/events';
import * as meta from '@lading/metadata';
import { isValidTag, looksLikeDigest, parseDigest } from '@lading/oci';
import type { RegistryMetrics } from '@lading/telemetry';
import type { FetchLeases, ProxyRules } from '@lading/upstream';
import type { ManifestPullThrough } from './manifest-pull-through';

/** What the decorator needs. */
export interface ManifestFetchLeasesDeps {
  db: meta.SqlExecutor;
  leases: FetchLeases;
  proxies: ProxyRules;
  /** Counts reads that wait for another process's fetch (`wait`); none recorded without it. */
  metrics?: Pick<RegistryMetrics, 'proxyRequests'>;
}

/** `pullThrough` with its misses single-flighted across processes (see the top of this file). */
export function withFetchLeases(pullThrough: ManifestPullThrough, deps: ManifestFetchLeasesDeps): ManifestPullThrough {
  const { db } = deps;
  /** The lease wait (or fetch) in flight per repository and reference in this process. */
  const inFlight = new Map<string, Promise<string[]>>();

  /** Whether a read of `reference` finds it stored; true for a malformed reference, which pull-through answers. */
  async function stored(repository: string, reference: string): Promise<boolean> {
    if (looksLikeDigest(reference)) {
      let digest: string;
      try {
        digest = parseDigest(reference).value;
      } catch {
        return true;
      }
      return meta.storedManifestExists(db, repository, digest);
    }
    if (!isValidTag(reference)) return true;
    return (await meta.tagDigest(db, repository, reference)) !== null;
  }

  function leased(repository: string, reference: string, context: () => EventContext): Promise<string[]> {
    const key = `${repository}:${reference}`;
    const wait = () => deps.metrics?.proxyRequests.add(1, { namespace: deps.proxies.namespaceOf(repository)?.namespace ?? '', kind: 'manifest', result: 'wait' });
    const running = inFlight.get(key);
    if (running) {
      wait();
      return running;
    }
    const prepare = async () => (await pullThrough.prepare(repository, reference, context)) ?? [];
    const fetch = deps.leases
      .once({ key, stored: async () => ((await stored(repository, reference)) ? prepare() : null), fetch: prepare, onWait: wait })
      .then((r) => r.value)
      .finally(() => inFlight.delete(key));
    inFlight.set(key, fetch);
    return fetch;
  }

  return {
    covers: (repository) => pullThrough.covers(repository),
    async prepare(repository, reference, context) {
      if (!pullThrough.covers(repository) || (await stored(repository, reference))) return pullThrough.prepare(repository, reference, context);
      return leased(repository, reference, context);
    },
  };
}
