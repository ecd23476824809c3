/**
 * The admin API (`/admin/v1`): users, robot accounts, personal access tokens, namespaces (with their immutable-tag
 * rules: docs/governance.md), grants, key rotation, pull-through caches (`/admin/v1/proxies`, proxy-admin.ts), storage
 * quotas and usage (`/admin/v1/quotas`, `/admin/v1/usage`, quota-admin.ts) and
 * webhook subscriptions (`/admin/v1/webhooks`, the router of @lading/webhooks) and parked outbox rows (`/admin/v1/outbox`);
 * routers the process adds (`routers`: the embedded registry's collector at `/admin/v1/gc`, its repository deletion
 * at `/admin/v1/repositories`) sit behind the same guard.
 * Admins may call it, with Basic credentials (password or personal access token) or the console's session; so may
 * namespace admins (a grant of `admin` on a namespace), on the routes admin-authorization.ts opens to them and inside
 * their namespaces only. Secrets (robot secrets, tokens) are shown once, in the response that creates them.
 */
import express, { Request, Router } from 'express';
import { LadingConfig, durationMs } from '@lading/config';
import type { PasswordHasher, SecretCipher } from '@lading/access';
import * as meta from '@lading/metadata';
import type { Database, SqlExecutor } from '@lading/metadata';
import { type AdminChange, createAuditAdminRouter, createOutboxAdminRouter } from '@lading/events';
import { assertStorableInput } from '@lading/http';
import { OciError, isValidRepositoryName } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import { createWebhookAdminRouter, findSubscription, withoutSecret } from '@lading/webhooks';
import { administers, adminScope, adminScopeOf, createRouteAuthorization, robotNamespace } from './admin-authorization';
import type { AuthAudit, BeforeReader } from './audit-trail';
import { basicCredentials, checkCredentials } from './credentials';
import { createProxyAdminRouter } from './proxy-admin';
import { createQuotaAdminRouter, createUsageAdminRouter } from './quota-admin';
import { PAT_PREFIX, Principal, ROBOT_PREFIX, newSecret, secretDigest } from './principals';
import type { KeyRing } from './signing-keys';

/** What the admin API needs from the auth service. */
export interface AdminApiDeps {
  db: Database;
  config: LadingConfig;
  logger: Logger;
  keys: KeyRing;
  login(req: Request, username: string, password: string): Promise<Principal>;
  /** Hashes new passwords and robot secrets (the auth service's worker pool). */
  passwords: PasswordHasher;
  now: () => number;
  /** More routers behind the same admin guard, by path (the embedded registry's collector: `/gc`). */
  routers?: Record<string, Router>;
  /** Seals the upstream passwords of stored proxy rules. */
  secrets: SecretCipher;
  /** Puts a change of the stored proxy rules in force in this process at once (see proxy-admin.ts). */
  proxyRulesChanged?: () => Promise<void>;
  /** Puts a quota change in force in this process's quota checks at once (see quota-admin.ts). */
  quotasChanged?: () => Promise<void>;
  /** The principal of the request's console session, if it carries a valid one (accepted in place of Basic). */
  sessionPrincipal?: (req: Request) => Promise<Principal | null>;
  /** Records every change made through this API (audit-trail.ts); nothing is recorded without it. */
  audit?: AuthAudit;
}

const PRINCIPAL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** A robot's name: a global robot's, or a namespace robot's `<namespace>+<name>` (a repository name has no `+`). */
const ROBOT_NAME = '(?:[a-z0-9][a-z0-9._/-]{0,254}\\+)?[a-z0-9][a-z0-9._-]{0,63}';
const ROLES = ['pull', 'push', 'delete', 'admin'] as const;
/**
 * Who a grant names: `user:<name>`, `robot:<name>`, or `group:<name>`, a group as the identity provider names it
 * (a directory's `cn`, an OIDC groups claim), matched exactly, case included.
 */
const GRANT_PRINCIPAL = new RegExp(`^(?:user:[a-z0-9][a-z0-9._-]{0,63}|robot:${ROBOT_NAME}|group:[A-Za-z0-9][A-Za-z0-9 ._@-]{0,127})$`);

function invalid(message: string): OciError {
  return new OciError('UNSUPPORTED', message, undefined, { status: 400 });
}

function notFound(what: string): OciError {
  return new OciError('NOT_FOUND', `${what} not found`);
}

function stringField(body: Record<string, unknown>, key: string, pattern?: RegExp): string {
  const value = body[key];
  if (typeof value !== 'string' || (pattern && !pattern.test(value))) throw invalid(`${key} is missing or invalid`);
  return value;
}

/** The longest lifetime a token or robot may be given: ten years. */
const MAX_EXPIRES_IN_MS = 10 * 365 * 24 * 3600 * 1000;

function optionalExpiry(body: Record<string, unknown>, now: number): Date | null {
  if (body.expiresIn === undefined || body.expiresIn === null) return null;
  const message = 'expiresIn must be a duration such as 30m or 720h, more than 0 and at most 87600h (ten years)';
  if (typeof body.expiresIn !== 'string' || !/^\d+(ms|s|m|h)$/.test(body.expiresIn)) throw invalid(message);
  // Bounded, so that the expiry is a date Postgres can store (a huge one made an invalid Date and a 500).
  const ms = durationMs(body.expiresIn);
  if (!(ms > 0 && ms <= MAX_EXPIRES_IN_MS)) throw invalid(message);
  return new Date(now + ms);
}

/** The immutable-tag rules a namespace body sets, each list only when the body names it (validated: 400 otherwise). */
function tagRulesOf(body: Record<string, unknown>): { immutableTags?: string[]; immutableTagExceptions?: string[] } {
  const list = (key: 'immutableTags' | 'immutableTagExceptions'): string[] | undefined => {
    const value = body[key];
    if (value === undefined) return undefined;
    const message = `${key} must be a list of at most ${meta.TAG_RULES_MAX_PATTERNS} tag globs (tag characters, '*' and '?', at most ${meta.TAG_GLOB_MAX_LENGTH} each)`;
    if (!Array.isArray(value) || value.length > meta.TAG_RULES_MAX_PATTERNS) throw invalid(message);
    for (const glob of value) if (typeof glob !== 'string' || !meta.isValidTagGlob(glob)) throw invalid(message);
    return [...new Set(value as string[])];
  };
  return { immutableTags: list('immutableTags'), immutableTagExceptions: list('immutableTagExceptions') };
}

/**
 * Reads what an admin change will alter, for its audit record's `before`: the user, robot, webhook subscription,
 * stored proxy rule, namespace (with its grants) the path or body names. Null for the other routes (a key rotation,
 * a collection) and for what does not exist yet. Secrets are redacted by the audit trail, hashes included.
 */
export function stateBeforeChange(db: Database): BeforeReader {
  return async (req) => {
    const [, kind, name] = /^\/(users|robots|webhooks|proxies|namespaces|grants)(?:\/([^/?]+))?/.exec(req.path) ?? [];
    const id = name === undefined ? undefined : decodeURIComponent(name);
    const body = (req.body ?? {}) as Record<string, unknown>;
    switch (kind) {
      case 'users':
        return id === undefined ? null : (await meta.listUsers(db)).find((u) => u.name === id) ?? null;
      case 'robots':
        return id === undefined ? null : (await meta.listRobots(db)).find((r) => r.name === id) ?? null;
      case 'webhooks': {
        if (id === undefined || !/^[0-9a-f-]{36}$/i.test(id)) return null;
        const found = await findSubscription(db, id);
        return found ? withoutSecret(found) : null;
      }
      case 'proxies': {
        const namespace = decodeURIComponent(req.path.slice('/proxies/'.length));
        return (await meta.listStoredProxyRules(db)).find((r) => r.namespace === namespace) ?? null;
      }
      case 'namespaces':
      case 'grants': {
        const prefix = typeof req.query.prefix === 'string' ? req.query.prefix : body.prefix;
        return (await meta.listNamespaces(db)).find((n) => n.prefix === prefix) ?? null;
      }
      default:
        return null;
    }
  };
}

/** Creates the admin router. */
export function createAdminRouter(deps: AdminApiDeps): Router {
  const { db } = deps;
  const router = express.Router();
  router.use(express.json({ limit: '64kb' }));
  // Everything the admin API is sent ends up in a query: refuse what Postgres text cannot hold (U+0000, unpaired
  // surrogates) and escapes that do not decode (`%FF`) with a 400 here, before any handler sees it.
  router.use((req, _res, next) => {
    assertStorableInput(req);
    next();
  });

  router.use(async (req, res, next) => {
    const credentials = basicCredentials(req.headers.authorization);
    // The console signs in once; its session (its CSRF token checked by the gateway) stands for the credentials.
    const session = credentials || req.headers.authorization ? null : await deps.sessionPrincipal?.(req);
    if (!credentials && !session) {
      res.setHeader('WWW-Authenticate', 'Basic realm="lading-admin"');
      throw new OciError('UNAUTHORIZED', 'admin credentials required');
    }
    const principal = session ?? (await deps.login(req, credentials!.username, credentials!.password));
    const scope = await adminScopeOf(db, principal);
    if (!scope) throw new OciError('DENIED', 'only admins and namespace admins may use the admin API');
    res.locals.admin = principal.name;
    res.locals.adminScope = scope;
    next();
  });
  // Which routes a namespace admin may call, and on what (admin-authorization.ts): before the audit trail, so that
  // a refused request records nothing.
  router.use(createRouteAuthorization(db));
  // Every change below is recorded (route, target, before and after, secrets redacted): a route added later is too.
  if (deps.audit) router.use(deps.audit.adminChanges(stateBeforeChange(db)));
  /**
   * Makes a change and its audit record in one transaction (audit-trail.ts): `work` changes through `tx` only and
   * returns the answer; a throw (a 404, a failed record) rolls both back.
   */
  const change: AdminChange = (req, res, status, work) => (deps.audit ? deps.audit.change(req, res, status, work) : db.transaction(work));

  router.get('/users', async (_req, res) => {
    res.json({ users: await meta.listUsers(db) });
  });
  router.post('/users', async (req, res) => {
    const name = stringField(req.body ?? {}, 'name', PRINCIPAL_NAME);
    const password = stringField(req.body ?? {}, 'password');
    if (password.length < 8) throw invalid('password must have at least 8 characters');
    checkCredentials({ username: name, password });
    const hash = await deps.passwords.hash(password);
    const answer = await change(req, res, 201, async (tx) => {
      if (!(await meta.createUser(tx, name, hash, req.body.admin === true))) throw new OciError('DENIED', `user ${name} exists`, undefined, { status: 409 });
      return { name, admin: req.body.admin === true };
    });
    res.status(201).json(answer);
  });
  router.put('/users/:name/password', async (req, res) => {
    const password = stringField(req.body ?? {}, 'password');
    if (password.length < 8) throw invalid('password must have at least 8 characters');
    // A password no login could send (a login with a control character is refused) is refused here too.
    checkCredentials({ username: '', password });
    // A directory user's password is the directory's: a local one would never be checked, so none is set.
    if ((await meta.findUser(db, req.params.name))?.source === 'ldap') {
      throw new OciError('DENIED', `user ${req.params.name} signs in with the directory; change the password there`, undefined, { status: 409 });
    }
    const hash = await deps.passwords.hash(password);
    await change(req, res, 204, async (tx) => {
      if (!(await meta.setUserPassword(tx, req.params.name, hash))) throw notFound('user');
      return null;
    });
    res.status(204).end();
  });
  for (const state of ['disable', 'enable'] as const) {
    router.post(`/users/:name/${state}`, async (req, res) => {
      await change(req, res, 204, async (tx) => {
        if (!(await meta.setUserDisabled(tx, req.params.name, state === 'disable'))) throw notFound('user');
        return null;
      });
      res.status(204).end();
    });
  }
  router.delete('/users/:name', async (req, res) => {
    // Grants and refresh tokens name the user rather than reference its row: they go with it, so that a later user
    // of the same name inherits neither.
    await change(req, res, 204, async (tx) => {
      if (!(await meta.deleteUser(tx, req.params.name))) throw notFound('user');
      await meta.deleteUserGrants(tx, req.params.name);
      await meta.revokeUserRefreshTokens(tx, req.params.name);
      return null;
    });
    res.status(204).end();
  });

  router.get('/users/:name/tokens', async (req, res) => {
    res.json({ tokens: await meta.listAccessTokens(db, req.params.name) });
  });
  router.post('/users/:name/tokens', async (req, res) => {
    const tokenName = stringField(req.body ?? {}, 'name', PRINCIPAL_NAME);
    const token = newSecret(PAT_PREFIX);
    const expiresAt = optionalExpiry(req.body ?? {}, deps.now());
    const answer = await change(req, res, 201, async (tx) => {
      if (!(await meta.createAccessToken(tx, req.params.name, tokenName, secretDigest(token), expiresAt))) {
        throw new OciError('DENIED', 'no such user, or a token of that name exists', undefined, { status: 409 });
      }
      return { name: tokenName, token };
    });
    res.status(201).json(answer);
  });
  router.delete('/users/:name/tokens/:token', async (req, res) => {
    await change(req, res, 204, async (tx) => {
      if (!(await meta.revokeAccessToken(tx, req.params.name, req.params.token))) throw notFound('token');
      return null;
    });
    res.status(204).end();
  });

  // A namespace admin sees the robots of its namespaces only.
  router.get('/robots', async (_req, res) => {
    const scope = adminScope(res);
    const robots = (await meta.listRobots(db)).filter((r) => scope.global || (r.namespace !== null && administers(scope, r.namespace)));
    res.json({ robots: robots.map((r) => ({ ...r, login: `${ROBOT_PREFIX}${r.name}` })) });
  });
  // With a `namespace`, the robot belongs to it and is named `<namespace>+<name>`; without, a global robot.
  router.post('/robots', async (req, res) => {
    const body = req.body ?? {};
    const short = stringField(body, 'name', PRINCIPAL_NAME);
    const namespace = body.namespace === undefined || body.namespace === null ? null : stringField(body, 'namespace');
    if (namespace !== null && !(await meta.findNamespace(db, namespace))) throw notFound('namespace');
    const name = namespace === null ? short : `${namespace}+${short}`;
    const secret = newSecret('lrs_');
    const expiresAt = optionalExpiry(body, deps.now());
    const hash = await deps.passwords.hash(secret);
    const answer = await change(req, res, 201, async (tx) => {
      if (!(await meta.createRobot(tx, name, hash, expiresAt, res.locals.admin, namespace))) {
        throw new OciError('DENIED', `robot ${name} exists`, undefined, { status: 409 });
      }
      return { name, namespace, login: `${ROBOT_PREFIX}${name}`, secret };
    });
    res.status(201).json(answer);
  });
  router.delete('/robots/:name', async (req, res) => {
    await change(req, res, 204, async (tx) => {
      if (!(await meta.revokeRobot(tx, req.params.name))) throw notFound('robot');
      return null;
    });
    res.status(204).end();
  });

  // A namespace admin sees the namespaces it administers only.
  router.get('/namespaces', async (_req, res) => {
    const scope = adminScope(res);
    res.json({ namespaces: (await meta.listNamespaces(db)).filter((n) => administers(scope, n.prefix)) });
  });
  router.post('/namespaces', async (req, res) => {
    const body = req.body ?? {};
    const prefix = stringField(body, 'prefix');
    if (!isValidRepositoryName(prefix)) throw invalid('prefix must be a valid repository name');
    const rules = tagRulesOf(body);
    const answer = await change(req, res, 201, async (tx) => {
      await meta.upsertNamespace(tx, prefix, body.public === true);
      await meta.setTagRules(tx, prefix, rules.immutableTags ?? null, rules.immutableTagExceptions ?? null);
      return namespaceView(tx, prefix);
    });
    res.status(201).json(answer);
  });
  // Changes what the body names and nothing else (`public`, `immutableTags`, `immutableTagExceptions`); the prefix is
  // a query parameter, as for DELETE, because it may hold slashes.
  router.patch('/namespaces', async (req, res) => {
    const body = req.body ?? {};
    const prefix = typeof req.query.prefix === 'string' ? req.query.prefix : '';
    if (body.public !== undefined && typeof body.public !== 'boolean') throw invalid('public must be true or false');
    // Who may pull a namespace unauthenticated is the registry's say: a namespace admin changes its tag rules only.
    if (body.public !== undefined && !adminScope(res).global) throw new OciError('DENIED', 'only global admins change whether a namespace is public');
    const rules = tagRulesOf(body);
    const answer = await change(req, res, 200, async (tx) => {
      if (!(await meta.setTagRules(tx, prefix, rules.immutableTags ?? null, rules.immutableTagExceptions ?? null))) throw notFound('namespace');
      if (typeof body.public === 'boolean') await meta.upsertNamespace(tx, prefix, body.public);
      return namespaceView(tx, prefix);
    });
    res.json(answer);
  });
  async function namespaceView(tx: SqlExecutor, prefix: string) {
    const n = await meta.findNamespace(tx, prefix);
    return { prefix, public: n?.public ?? false, immutableTags: n?.immutableTags ?? [], immutableTagExceptions: n?.immutableTagExceptions ?? [] };
  }
  router.delete('/namespaces', async (req, res) => {
    const prefix = typeof req.query.prefix === 'string' ? req.query.prefix : '';
    // Its robots go with it (revoked), so that a namespace made again later under that prefix does not inherit them.
    await change(req, res, 204, async (tx) => {
      if (!(await meta.deleteNamespace(tx, prefix))) throw notFound('namespace');
      await meta.revokeNamespaceRobots(tx, prefix);
      return null;
    });
    res.status(204).end();
  });

  function grantOf(body: Record<string, unknown>) {
    const prefix = stringField(body, 'prefix');
    const principal = stringField(body, 'principal', GRANT_PRINCIPAL);
    const role = stringField(body, 'role');
    if (!(ROLES as readonly string[]).includes(role)) throw invalid(`role must be one of ${ROLES.join(', ')}`);
    const colon = principal.indexOf(':');
    const type = principal.slice(0, colon) as meta.GrantPrincipalType;
    const name = principal.slice(colon + 1);
    return { prefix, type, name: type === 'robot' ? `${ROBOT_PREFIX}${name}` : name, role: role as (typeof ROLES)[number] };
  }
  // A namespace admin grants on its namespaces only (the route authorization checks `prefix`), any role, `admin`
  // included: it may make co-owners of what it owns, never more.
  router.post('/grants', async (req, res) => {
    const g = grantOf(req.body ?? {});
    if (!(await meta.listNamespaces(db)).some((n) => n.prefix === g.prefix)) throw notFound('namespace');
    const home = g.type === 'robot' ? robotNamespace(g.name.slice(ROBOT_PREFIX.length)) : undefined;
    if (home !== undefined && !administers({ global: false, namespaces: [home] }, g.prefix)) {
      throw invalid(`robot ${g.name.slice(ROBOT_PREFIX.length)} belongs to namespace ${home}: it may be granted roles there and beneath it only`);
    }
    const answer = await change(req, res, 201, async (tx) => {
      await meta.addGrant(tx, g.prefix, g.type, g.name, g.role);
      return { prefix: g.prefix, principal: `${g.type}:${g.name}`, role: g.role };
    });
    res.status(201).json(answer);
  });
  router.delete('/grants', async (req, res) => {
    const g = grantOf(req.body ?? {});
    await change(req, res, 204, async (tx) => {
      if (!(await meta.removeGrant(tx, g.prefix, g.type, g.name, g.role))) throw notFound('grant');
      return null;
    });
    res.status(204).end();
  });

  router.use('/webhooks', createWebhookAdminRouter({ db, config: deps.config, visibleTo: (res) => (namespace) => administers(adminScope(res), namespace), change }));
  router.use('/outbox', createOutboxAdminRouter({ db, change }));
  router.use('/quotas', createQuotaAdminRouter({ db, logger: deps.logger, quotasChanged: deps.quotasChanged, change }));
  router.use('/usage', createUsageAdminRouter({ db, logger: deps.logger }));
  router.use('/audit', createAuditAdminRouter({ db, now: deps.now }));
  router.use('/proxies', createProxyAdminRouter({ db, config: deps.config, logger: deps.logger, secrets: deps.secrets, proxyRulesChanged: deps.proxyRulesChanged, change }));
  for (const [mount, extra] of Object.entries(deps.routers ?? {})) router.use(mount, extra);

  router.post('/keys/rotate', async (_req, res) => {
    const graceMs = durationMs(deps.config.auth.tokenTtl) + 120_000;
    res.status(201).json({ kid: await deps.keys.rotate(graceMs) });
  });
  return router;
}
