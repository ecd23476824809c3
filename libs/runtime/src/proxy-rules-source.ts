/**
 * Where every process gets its pull-through caches' rules from: the one place that turns configuration into
 * `ProxyRules`, shared by the embedded registry and every distributed process that needs them (blob, manifest,
 * gateway), so that a different source of rules is switched here once.
 */
import type { LadingConfig } from '@lading/config';
import { type ProxyRules, createProxyRules } from '@lading/upstream';

/** The proxy rules of a configuration, or undefined when it has no pull-through cache (nothing to wire). */
export function openProxyRules(config: Pick<LadingConfig, 'proxies'>): ProxyRules | undefined {
  return config.proxies.length === 0 ? undefined : createProxyRules(config.proxies);
}
