/**
 * The pull-through cache's manifest reads: before a proxied repository answers a manifest GET/HEAD, what it names is
 * made present. A digest not stored is fetched from the upstream; a tag not stored is fetched; a stored tag older
 * than the rule's `tagTtl` is checked with a HEAD (cheap, and no pull on Docker Hub's limit) and fetched again only
 * when it moved. What is fetched is stored through `pushManifest`, as ordinary content with its events, which carry
 * the cache as `data.proxy`.
 *
 * Lazy, like Distribution's proxy: a manifest is stored as soon as it is fetched and verified, without what it
 * references. Its layers, its config and, for an index, its child manifests are fetched when a client asks for
 * them: a blob by the blob service's miss path (blob-pull-through.ts), a child by digest as a manifest miss here.
 * So pulling one platform of a multi-arch index fetches the index, that platform's manifest and its blobs, nothing
 * of the other platforms, and the client gets the manifest without waiting for any layer.
 * The config is lazy too: Docker and containerd ask for it right after the manifest anyway, so fetching it first
 * would only move its round trip into the manifest's answer, while clients that read manifests only (digest
 * checks, `crane digest`, Renovate) would pay for it; and the manifest service never needs the blob service.
 *
 * Invariants:
 * - A manifest is stored only when its bytes have the digest they were asked by (or, by tag, the digest the
 *   upstream announced). `pushManifest` records all its references (a reference may name a blob not stored), but,
 *   for content entering through the cache only (`context.proxy`), does not require them stored; a push from a
 *   client is checked as always.
 * - Digests are immutable: a digest held is served without asking the upstream. A tag whose upstream cannot be
 *   asked (down, rate-limiting, refusing) is served as stored, with a warning.
 *
 * What reads a proxied manifest's references, and why a reference to content not (yet) stored breaks none of them:
 * - The garbage collector (services/gc, libs/metadata gc-references.ts): a blob review keeps a blob any manifest
 *   references, so a layer fetched after its manifest is kept by it; a reference to a blob not stored keeps nothing
 *   and is never read as "the blob exists". A manifest review reads tags, parent indexes (`manifest_children`, which
 *   never required its children stored) and the payload, not the blobs. Deleting a manifest queues reviews of every
 *   blob and child it references; one never stored is found gone.
 * - Eviction (services/gc/src/eviction.ts, `staleManifests`): an index's children are those listed by it, and only
 *   stored children's pull times count; deleting an evicted manifest queues its references as above, so the blobs
 *   fetched for it are collected and the others never existed.
 * - Manifest deletes (`removeManifest`), referrers (manifests by `subject_digest`), the catalog and tag lists read
 *   manifests and tags, never their blobs.
 * - Cross-repository mounts need a link to the blob in the source repository: a layer not fetched has none, so a
 *   mount from the cache answers 202 (upload instead), as for any blob the source does not hold.
 * - `storedManifestExists` (here, and the reader's confirmation of a cached answer) asks about the manifest itself;
 *   a GET or HEAD of a child by digest that is not stored is a miss, fetched here like any digest.
 * - Backups (services/embedded/src/backup) copy the blob rows and their objects, and restore the reference rows as
 *   they were; a reference to a blob not stored is restored as such and the blob fetched on its next pull.
 * - Scanners that react to `manifest.pushed` (tools/scanner) read the config and layers through the registry's API,
 *   so their reads are client asks like any other and fetch what is missing.
 */
import type { EventContext } from '@lading/events';
import * as meta from '@lading/metadata';
import { OciError, errors, looksLikeDigest, parseDigest, digestOf, isValidTag } from '@lading/oci';
import type { Logger, ProxyRequestLabels, RegistryMetrics } from '@lading/telemetry';
import { type FetchLeases, type ProxiedRepository, type ProxyRules, ociErrorOfUpstream } from '@lading/upstream';
import { type ManifestWriteDeps, pushManifest } from './manifest-writes';

/** What manifest pull-through is built from. */
export interface ManifestPullThroughDeps {
  writes: ManifestWriteDeps;
  proxies: ProxyRules;
  /** Largest manifest accepted from an upstream (`registry.manifestMaxBytes`). */
  maxBytes: number;
  logger: Logger;
  /** The clock, in milliseconds (tests move it). */
  now?: () => number;
  /** Called after a fetched manifest's events committed (wakes the outbox relay). */
  onEventsCommitted?: () => void;
  /** Counts hits, misses, waits, stale tags and upstream failures; none recorded without it. */
  metrics?: Pick<RegistryMetrics, 'proxyRequests'>;
  /**
   * Single flight across processes (manifest replicas): a miss is fetched under its reference's lease, and a process
   * that finds the lease held waits until another stored it. Without it, single flight holds within this process.
   */
  leases?: FetchLeases;
}

/** Makes what manifest reads in proxied repositories name present. */
export interface ManifestPullThrough {
  /** Whether a repository is a pull-through cache's (reads elsewhere need no preparing). */
  covers(repository: string): boolean;
  /**
   * Prepares a manifest read of `reference` in `repository`: resolves with the tags whose target it (re)stored (the
   * reader must forget their cached answers), or null when the repository is no proxy's. Throws an OciError when
   * the content is neither stored nor obtainable.
   */
  prepare(repository: string, reference: string, context: () => EventContext): Promise<string[] | null>;
}

/** Creates manifest pull-through. */
export function createManifestPullThrough(deps: ManifestPullThroughDeps): ManifestPullThrough {
  const { writes, logger } = deps;
  const now = deps.now ?? Date.now;
  const count = (namespace: string, result: ProxyRequestLabels['result']) => deps.metrics?.proxyRequests.add(1, { namespace, kind: 'manifest', result });
  /** When each stored tag was last confirmed with the upstream (per process; a restart re-checks once). */
  const tagCheckedAt = new Map<string, number>();

  /**
   * Fetches a manifest by tag or digest and stores it (pointing `tags` at it), without what it references: those are
   * fetched when asked for. Its events name the cache (`data.proxy`).
   */
  async function fetchManifest(source: ProxiedRepository, repository: string, reference: string, tags: string[], context: EventContext): Promise<string> {
    const fetched = await source.upstream.getManifest(source.upstreamRepository, reference, deps.maxBytes);
    const expected = looksLikeDigest(reference) ? parseDigest(reference) : fetched.digest && looksLikeDigest(fetched.digest) ? parseDigest(fetched.digest) : null;
    const actual = digestOf(fetched.body, expected?.algorithm ?? 'sha256');
    if (expected && expected.value !== actual) {
      logger.warn({ repository, reference, expected: expected.value, actual }, 'pull-through: the upstream sent a manifest that does not match its digest');
      throw errors.unavailable(`the upstream of ${source.namespace} sent a manifest that is not ${expected.value}`);
    }
    const pushed = await pushManifest(writes, {
      repository,
      body: fetched.body,
      contentType: fetched.mediaType ?? undefined,
      expectedDigest: parseDigest(actual),
      tags,
      context: { ...context, proxy: source.proxy },
    });
    deps.onEventsCommitted?.();
    logger.info({ repository, reference, digest: pushed.digest }, 'pull-through: manifest cached');
    return pushed.digest;
  }

  /**
   * Runs a miss's `fetch` once across processes (under the lease of `repository` and `reference`, when there are
   * leases); resolves with true when another process stored the content meanwhile and this one fetched nothing.
   */
  async function fetchMiss(source: ProxiedRepository, repository: string, reference: string, isStored: () => Promise<boolean>, fetch: () => Promise<unknown>): Promise<boolean> {
    if (!deps.leases) {
      await fetch();
      return false;
    }
    const { waited } = await deps.leases.once({
      key: `${repository}:${reference}`,
      stored: async () => ((await isStored()) ? true : null),
      fetch: async () => (await fetch(), true),
      onWait: () => count(source.namespace, 'wait'),
    });
    return waited;
  }

  async function prepareTag(source: ProxiedRepository, repository: string, tag: string, context: () => EventContext): Promise<string[]> {
    const key = `${repository}:${tag}`;
    // Looked up first: a tag deleted here (evicted) is fetched again however recently it was checked.
    const stored = await meta.tagDigest(writes.db, repository, tag);
    const checked = tagCheckedAt.get(key);
    if (stored && checked !== undefined && now() - checked < source.tagTtlMs) {
      count(source.namespace, 'hit');
      return [];
    }
    if (stored) {
      try {
        const head = await source.upstream.headManifest(source.upstreamRepository, tag);
        if (head.digest === stored) {
          tagCheckedAt.set(key, now());
          count(source.namespace, 'hit');
          return [];
        }
        await fetchManifest(source, repository, head.digest && looksLikeDigest(head.digest) ? head.digest : tag, [tag], context());
      } catch (err) {
        // Stale beats nothing: the tag stays servable while the upstream is down, limiting or refusing.
        logger.warn({ err, repository, tag, digest: stored }, 'pull-through: serving a stale tag, its upstream could not be asked');
        count(source.namespace, 'stale');
        return [];
      }
    } else {
      const stored = async () => (await meta.tagDigest(writes.db, repository, tag)) !== null;
      const waited = await fetchMiss(source, repository, tag, stored, () => fetchManifest(source, repository, tag, [tag], context()));
      tagCheckedAt.set(key, now());
      if (!waited) count(source.namespace, 'miss');
      return [tag];
    }
    tagCheckedAt.set(key, now());
    count(source.namespace, 'miss');
    return [tag];
  }

  /** The preparation in flight per repository and reference: concurrent reads of one miss ask the upstream once. */
  const inFlight = new Map<string, Promise<string[]>>();

  return {
    covers: (repository) => deps.proxies.match(repository) !== null,
    prepare(repository, reference, context) {
      const source = deps.proxies.match(repository);
      if (!source) return Promise.resolve(null);
      const key = `${repository}\n${reference}`;
      let running = inFlight.get(key);
      if (running) count(source.namespace, 'wait');
      else {
        running = prepareOnce(source, repository, reference, context).finally(() => inFlight.delete(key));
        inFlight.set(key, running);
      }
      return running;
    },
  };

  /** Makes what one read names present (see `prepare`); upstream failures become the OCI errors clients get. */
  async function prepareOnce(source: ProxiedRepository, repository: string, reference: string, context: () => EventContext): Promise<string[]> {
    try {
      if (looksLikeDigest(reference)) {
        const digest = parseDigest(reference);
        const stored = () => meta.storedManifestExists(writes.db, repository, digest.value);
        if (await stored()) count(source.namespace, 'hit');
        else if (!(await fetchMiss(source, repository, digest.value, stored, () => fetchManifest(source, repository, digest.value, [], context())))) count(source.namespace, 'miss');
        return [];
      }
      if (!isValidTag(reference)) return [];
      return await prepareTag(source, repository, reference, context);
    } catch (err) {
      count(source.namespace, 'error');
      if (err instanceof OciError) throw err;
      logger.warn({ err, repository, reference }, 'pull-through: the upstream did not give a manifest');
      throw ociErrorOfUpstream(err, source.namespace, () => errors.manifestUnknown(reference.slice(0, 200)));
    }
  }
}
