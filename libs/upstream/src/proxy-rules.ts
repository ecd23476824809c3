/**
 * Which repositories are pull-through caches, and of what: the configured `proxies`, each a namespace and its
 * upstream. A repository `<namespace>/<path>` is fetched from the upstream as `<path>`; nothing in a request can
 * name another upstream, since the upstream is taken from the rule alone.
 */
import type { ProxyConfig } from '@lading/config';
import { durationMs } from '@lading/config';
import { OciError } from '@lading/oci';
import { type UpstreamRegistry, type UpstreamRegistryDeps, createUpstreamRegistry } from './upstream-registry';

/** A repository matched to its proxy rule. */
export interface ProxiedRepository {
  /** The local namespace of the rule (`hub`). */
  namespace: string;
  /** The repository as the upstream names it (`library/alpine` for `hub/library/alpine`). */
  upstreamRepository: string;
  /** The client of the rule's upstream (one per rule, shared by every repository under it). */
  upstream: UpstreamRegistry;
  /** How long a cached tag is trusted before it is checked upstream again. */
  tagTtlMs: number;
  /**
   * The cache as the events of what enters through it name it (`data.proxy`): its namespace and its upstream's
   * origin, which never holds credentials.
   */
  proxy: { namespace: string; upstream: string };
}

/** The configured pull-through caches. */
export interface ProxyRules {
  /** The rule of a repository, or null when it is no proxy's (the namespace itself has no upstream path). */
  match(repository: string): ProxiedRepository | null;
  /** The proxied namespace a repository lies in, or null: for refusing writes without asking the upstream. */
  namespaceOf(repository: string): { namespace: string; upstream: string } | null;
  /** Closes every upstream client. */
  close(): Promise<void>;
}

/** Makes the client of one upstream; the default is `createUpstreamRegistry`. */
export type UpstreamFactory = (deps: UpstreamRegistryDeps) => UpstreamRegistry;

/** Builds the proxy rules of a configuration; upstream clients are made on first use. */
export function createProxyRules(proxies: readonly ProxyConfig[], makeUpstream: UpstreamFactory = createUpstreamRegistry): ProxyRules {
  const clients = new Map<string, UpstreamRegistry>();
  const ruleOf = (repository: string) => proxies.find((p) => repository === p.namespace || repository.startsWith(`${p.namespace}/`)) ?? null;

  function clientOf(rule: ProxyConfig): UpstreamRegistry {
    let client = clients.get(rule.namespace);
    if (!client) {
      client = makeUpstream({ url: rule.upstream, username: rule.username, password: rule.password });
      clients.set(rule.namespace, client);
    }
    return client;
  }

  return {
    match(repository) {
      const rule = ruleOf(repository);
      if (!rule || repository === rule.namespace) return null;
      return {
        namespace: rule.namespace,
        upstreamRepository: repository.slice(rule.namespace.length + 1),
        upstream: clientOf(rule),
        tagTtlMs: durationMs(rule.tagTtl),
        proxy: { namespace: rule.namespace, upstream: new URL(rule.upstream).origin },
      };
    },
    namespaceOf(repository) {
      const rule = ruleOf(repository);
      return rule ? { namespace: rule.namespace, upstream: rule.upstream } : null;
    },
    async close() {
      const all = [...clients.values()];
      clients.clear();
      await Promise.all(all.map((c) => c.close()));
    },
  };
}

/**
 * Refuses a write (push, upload, mount) into a proxied namespace with DENIED: its content comes from the upstream
 * only. Deletes are not writes here; they evict from the cache.
 */
export function refuseProxyWrite(proxies: readonly ProxyConfig[], repository: string): void {
  const rule = proxies.find((p) => repository === p.namespace || repository.startsWith(`${p.namespace}/`));
  if (!rule) return;
  throw new OciError('DENIED', `${rule.namespace} is a pull-through cache: its content comes from its upstream, and pushes into it are refused`, {
    repository: repository.slice(0, 300),
    namespace: rule.namespace,
  });
}
