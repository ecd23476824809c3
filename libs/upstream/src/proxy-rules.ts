/**
 * Which repositories are pull-through caches, and of what: the configured `proxies` (and, in a running registry,
 * those stored through the admin API: stored-proxy-rules.ts), each a namespace and its upstream. A repository
 * `<namespace>/<path>` is fetched from the upstream as `<path>`; nothing in a request can name another upstream,
 * since the upstream is taken from the rule alone.
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

/** Which proxied namespace a repository lies in: what refusing a write needs, without any upstream client. */
export interface ProxyNamespaces {
  /** The proxied namespace a repository lies in, or null: for refusing writes without asking the upstream. */
  namespaceOf(repository: string): { namespace: string; upstream: string } | null;
}

/** The pull-through caches in force. */
export interface ProxyRules extends ProxyNamespaces {
  /** The rule of a repository, or null when it is no proxy's (the namespace itself has no upstream path). */
  match(repository: string): ProxiedRepository | null;
  /** The rules in force now (with their credentials: never for an answer or a log line). */
  rules(): readonly ProxyConfig[];
  /** Closes every upstream client. */
  close(): Promise<void>;
}

/** Proxy rules that can be replaced while they serve (the live rules of config plus stored ones). */
export interface UpdatableProxyRules extends ProxyRules {
  /**
   * Puts `rules` in force. The client of a rule that changed or went away is dropped and closed (requests already
   * holding it finish on it); the next match of a changed rule builds a new one.
   */
  update(rules: readonly ProxyConfig[]): Promise<void>;
}

/** Makes the client of one upstream; the default is `createUpstreamRegistry`. */
export type UpstreamFactory = (deps: UpstreamRegistryDeps) => UpstreamRegistry;

/** Whether two rules need different upstream clients (another upstream or other credentials). */
function sameClient(a: ProxyConfig, b: ProxyConfig): boolean {
  return a.upstream === b.upstream && a.username === b.username && a.password === b.password;
}

/** The rule a repository lies in (the namespace itself, or under it), or null. */
function ruleOf(proxies: readonly ProxyConfig[], repository: string): ProxyConfig | null {
  return proxies.find((p) => repository === p.namespace || repository.startsWith(`${p.namespace}/`)) ?? null;
}

/**
 * Builds proxy rules over a fixed list (a configuration's `proxies`), which `update` may replace later; upstream
 * clients are made on first use, one per rule.
 */
export function createProxyRules(proxies: readonly ProxyConfig[], makeUpstream: UpstreamFactory = createUpstreamRegistry): UpdatableProxyRules {
  let current = proxies;
  const clients = new Map<string, { rule: ProxyConfig; client: UpstreamRegistry }>();

  function clientOf(rule: ProxyConfig): UpstreamRegistry {
    let entry = clients.get(rule.namespace);
    if (!entry) {
      entry = { rule, client: makeUpstream({ url: rule.upstream, username: rule.username, password: rule.password }) };
      clients.set(rule.namespace, entry);
    }
    return entry.client;
  }

  return {
    match(repository) {
      const rule = ruleOf(current, repository);
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
      const rule = ruleOf(current, repository);
      return rule ? { namespace: rule.namespace, upstream: rule.upstream } : null;
    },
    rules: () => current,
    async update(rules) {
      current = rules;
      const stale: UpstreamRegistry[] = [];
      for (const [namespace, entry] of clients) {
        const next = rules.find((r) => r.namespace === namespace);
        if (next && sameClient(next, entry.rule)) continue;
        clients.delete(namespace);
        stale.push(entry.client);
      }
      await Promise.all(stale.map((c) => c.close()));
    },
    async close() {
      const all = [...clients.values()];
      clients.clear();
      await Promise.all(all.map((c) => c.client.close()));
    },
  };
}

/**
 * Refuses a write (push, upload, mount) into a proxied namespace with DENIED: its content comes from the upstream
 * only. Deletes are not writes here; they evict from the cache.
 */
export function refuseProxyWrite(proxies: readonly ProxyConfig[] | ProxyNamespaces, repository: string): void {
  const rule = 'namespaceOf' in proxies ? proxies.namespaceOf(repository) : ruleOf(proxies, repository);
  if (!rule) return;
  throw new OciError('DENIED', `${rule.namespace} is a pull-through cache: its content comes from its upstream, and pushes into it are refused`, {
    repository: repository.slice(0, 300),
    namespace: rule.namespace,
  });
}
