/**
 * Pull-through caches managed at run time: rules stored through the admin API (`proxy_rules`) beside the
 * configuration's `proxies`, and the live rules every process serves from, config and stored combined.
 *
 * - A stored rule passes the config's own check (`checkProxyRule`): what the file could hold, and never a namespace
 *   equal to, holding or nested in another rule's, config or stored (checked under a table lock, so concurrent
 *   admins cannot both pass it).
 * - Config rules are read-only here: they change with the file (and a restart), never through the API.
 * - Upstream passwords are sealed at rest by the secret cipher (context `proxy <namespace>`), opened only to build
 *   the upstream client, and never shown: the API says `passwordSet`.
 * - Every process polls the table (every few seconds) and the process that made a change refreshes at once; a client
 *   of a changed or removed rule is closed and built again on next use.
 * - Deleting a stored rule leaves what its cache fetched as ordinary content: it is served locally, the collector
 *   treats it like any other, and the namespace takes pushes again.
 */
import { type SecretCipher, resealed } from '@lading/access';
import { type LadingConfig, type ProxyConfig, checkProxyRule } from '@lading/config';
import * as meta from '@lading/metadata';
import type { Database, SqlExecutor } from '@lading/metadata';
import { type InterruptibleSleep, openPolledState } from '@lading/runtime';
import type { Logger } from '@lading/telemetry';
import { type UpdatableProxyRules, type UpstreamFactory, type ProxyRules, createProxyRules } from './proxy-rules';
import { createUpstreamRegistry } from './upstream-registry';

/** How often a process reads the stored rules again, by default. */
export const PROXY_RULES_POLL_MS = 5_000;

/** The associated data that binds a sealed upstream password to its rule. */
const contextOf = (namespace: string) => `proxy ${namespace}`;

/** Why a change to the stored rules was refused; the admin API maps `kind` to its status. */
export class ProxyRuleError extends Error {
  constructor(
    readonly kind: 'invalid' | 'read-only' | 'not-found',
    message: string,
  ) {
    super(message);
    this.name = 'ProxyRuleError';
  }
}

/** A rule as the admin API shows it: never its password, only whether one is set. */
export interface ProxyRuleView {
  namespace: string;
  upstream: string;
  username?: string;
  passwordSet: boolean;
  tagTtl: string;
  evictAfter?: string;
  /** `config`: from the configuration file, read-only here; `stored`: managed through the admin API. */
  source: 'config' | 'stored';
  createdAt?: string;
  updatedAt?: string;
}

function configView(rule: ProxyConfig): ProxyRuleView {
  return {
    namespace: rule.namespace,
    upstream: rule.upstream,
    ...(rule.username === undefined ? {} : { username: rule.username }),
    passwordSet: rule.password !== undefined,
    tagTtl: rule.tagTtl,
    ...(rule.evictAfter === undefined ? {} : { evictAfter: rule.evictAfter }),
    source: 'config',
  };
}

function storedView(rule: meta.StoredProxyRule): ProxyRuleView {
  return {
    namespace: rule.namespace,
    upstream: rule.upstream,
    ...(rule.username === null ? {} : { username: rule.username }),
    passwordSet: rule.storedPassword !== null,
    tagTtl: rule.tagTtl,
    ...(rule.evictAfter === null ? {} : { evictAfter: rule.evictAfter }),
    source: 'stored',
    createdAt: rule.createdAt,
    updatedAt: rule.updatedAt,
  };
}

/** Every rule, config ones first, as the admin API lists them. */
export async function listProxyRuleViews(db: SqlExecutor, config: LadingConfig): Promise<ProxyRuleView[]> {
  return [...config.proxies.map(configView), ...(await meta.listStoredProxyRules(db)).map(storedView)];
}

function refuseConfigRule(config: LadingConfig, namespace: string): void {
  if (config.proxies.some((p) => p.namespace === namespace)) {
    throw new ProxyRuleError('read-only', `the proxy ${namespace} comes from the configuration file (proxies); change it there, not through the admin API`);
  }
}

/**
 * Creates or replaces the stored rule of `namespace` from an admin's input (`upstream`, `username`, `password`,
 * `tagTtl`, `evictAfter`), in one transaction; refuses (ProxyRuleError, nothing stored) what the config's check
 * refuses and a config rule's namespace. A replacement is the whole rule: a password not sent is no password.
 */
export async function putProxyRule(db: Database, deps: { config: LadingConfig; cipher: SecretCipher }, namespace: string, input: unknown): Promise<{ created: boolean; rule: ProxyRuleView }> {
  return db.transaction((tx) => putProxyRuleIn(tx, deps, namespace, input));
}

/** `putProxyRule` on an open transaction (the admin API's, which records the change in it too). */
export async function putProxyRuleIn(tx: SqlExecutor, deps: { config: LadingConfig; cipher: SecretCipher }, namespace: string, input: unknown): Promise<{ created: boolean; rule: ProxyRuleView }> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new ProxyRuleError('invalid', 'the body must be a JSON object: upstream, and optionally username, password, tagTtl, evictAfter');
  const body = input as Record<string, unknown>;
  if (body.namespace !== undefined && body.namespace !== namespace) throw new ProxyRuleError('invalid', 'namespace: the body names another namespace than the path');
  refuseConfigRule(deps.config, namespace);
  await meta.lockStoredProxyRules(tx);
  const stored = await meta.listStoredProxyRules(tx);
  const others = [...deps.config.proxies.map((p) => p.namespace), ...stored.map((r) => r.namespace).filter((n) => n !== namespace)];
  const check = checkProxyRule({ ...body, namespace }, others);
  if (!check.ok) throw new ProxyRuleError('invalid', check.problems.join('; '));
  const { rule } = check;
  const saved = await meta.putStoredProxyRule(tx, {
    namespace,
    upstream: rule.upstream,
    username: rule.username ?? null,
    storedPassword: rule.password === undefined ? null : deps.cipher.seal(rule.password, contextOf(namespace)),
    tagTtl: rule.tagTtl,
    evictAfter: rule.evictAfter ?? null,
  });
  return { created: saved.created, rule: storedView(saved.rule) };
}

/** Deletes the stored rule of `namespace` (its cached content stays as ordinary content); refuses a config rule's. */
export async function removeProxyRule(db: Database, config: LadingConfig, namespace: string): Promise<void> {
  await db.transaction((tx) => removeProxyRuleIn(tx, config, namespace));
}

/** `removeProxyRule` on an open transaction (the admin API's, which records the change in it too). */
export async function removeProxyRuleIn(tx: SqlExecutor, config: LadingConfig, namespace: string): Promise<void> {
  refuseConfigRule(config, namespace);
  await meta.lockStoredProxyRules(tx);
  if (!(await meta.deleteStoredProxyRule(tx, namespace))) throw new ProxyRuleError('not-found', `no stored proxy ${namespace}`);
}

/**
 * Seals every stored upstream password not sealed under the current key (plain, or under a previous key); resolves
 * with how many. Rejects (SecretCipherError) when one cannot be opened, so a process with the wrong key stops at
 * start-up instead of failing every pull.
 */
export async function sealStoredProxyPasswords(db: SqlExecutor, cipher: SecretCipher): Promise<number> {
  let sealed = 0;
  for (const rule of await meta.listStoredProxyRules(db)) {
    if (rule.storedPassword === null) continue;
    const next = resealed(cipher, rule.storedPassword, contextOf(rule.namespace));
    if (next !== null && (await meta.replaceStoredProxyPassword(db, rule.namespace, rule.storedPassword, next))) sealed++;
  }
  return sealed;
}

/** The live rules of a process: config and stored combined, kept current. */
export interface LiveProxyRules extends ProxyRules {
  /** Reads the stored rules now and puts the result in force (the process that changed them calls it at once). */
  refresh(): Promise<void>;
}

/** What the live rules are built from. */
export interface StoredProxyRulesDeps {
  db: Database;
  config: LadingConfig;
  /** Opens the stored passwords (the process's at-rest cipher). */
  cipher: SecretCipher;
  logger: Logger;
  /** How often the stored rules are read again; PROXY_RULES_POLL_MS by default. */
  pollIntervalMs?: number;
  makeUpstream?: UpstreamFactory;
  /** The poll's sleep, for tests to drive (see createPollingLoop); a real timer by default. */
  sleep?: InterruptibleSleep;
}

/** The rules of `config` followed by the stored ones, passwords opened. */
async function combinedRules(deps: StoredProxyRulesDeps): Promise<ProxyConfig[]> {
  const stored = await meta.listStoredProxyRules(deps.db);
  return [
    ...deps.config.proxies,
    ...stored.map((r) => ({
      namespace: r.namespace,
      upstream: r.upstream,
      ...(r.username === null ? {} : { username: r.username }),
      ...(r.storedPassword === null ? {} : { password: deps.cipher.open(r.storedPassword, contextOf(r.namespace)) }),
      tagTtl: r.tagTtl,
      ...(r.evictAfter === null ? {} : { evictAfter: r.evictAfter }),
    })),
  ];
}

/**
 * Starts the live proxy rules of a process: resolves once the stored rules are loaded (rejecting when they cannot
 * be read or a password cannot be opened), then polls them every `pollIntervalMs` until close(). A failed poll is
 * logged and the rules in force stay; refreshes run one at a time, so an older read never replaces a newer one.
 */
export async function createStoredProxyRules(deps: StoredProxyRulesDeps): Promise<LiveProxyRules> {
  const rules: UpdatableProxyRules = createProxyRules(deps.config.proxies, deps.makeUpstream ?? createUpstreamRegistry);
  let inForce = JSON.stringify(deps.config.proxies);
  const state = await openPolledState({
    async load() {
      const next = await combinedRules(deps);
      const text = JSON.stringify(next);
      if (text === inForce) return;
      inForce = text;
      await rules.update(next);
      deps.logger.info({ proxies: next.map((r) => r.namespace) }, 'proxy rules changed');
    },
    pollIntervalMs: deps.pollIntervalMs ?? PROXY_RULES_POLL_MS,
    sleep: deps.sleep,
    onError: (err, retryInMs) => deps.logger.error({ err, retryInMs }, 'cannot read the stored proxy rules; the rules in force stay'),
  });
  return {
    match: (repository) => rules.match(repository),
    namespaceOf: (repository) => rules.namespaceOf(repository),
    rules: () => rules.rules(),
    refresh: () => state.refresh(),
    async close() {
      await state.close();
      await rules.close();
    },
  };
}
