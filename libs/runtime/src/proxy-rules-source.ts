/**
 * Where a process that serves or evicts pull-through content gets its proxy rules from: the one place that turns
 * the configuration's `proxies` and the rules stored through the admin API into the live `ProxyRules`, shared by the
 * embedded registry and the distributed blob, manifest and gc processes.
 */
import type { SecretCipher } from '@lading/access';
import type { LadingConfig } from '@lading/config';
import type { Database } from '@lading/metadata';
import type { Logger } from '@lading/telemetry';
import { type LiveProxyRules, createStoredProxyRules } from '@lading/upstream';

/** What the live rules are read with. */
export interface ProxyRulesSourceDeps {
  db: Database;
  /** Opens stored upstream passwords: every process that fetches needs the same `secrets.key` as the auth service. */
  cipher: SecretCipher;
  logger: Logger;
}

/**
 * The proxy rules in force for this process, config and stored, read again every few seconds so that a rule added,
 * changed or removed through the admin API applies without a restart. The caller closes them.
 */
export function openProxyRules(config: LadingConfig, deps: ProxyRulesSourceDeps): Promise<LiveProxyRules> {
  return createStoredProxyRules({ db: deps.db, config, cipher: deps.cipher, logger: deps.logger.child({ service: 'lading-proxies' }) });
}
