/**
 * The auth service: the Docker token endpoint (GET with Basic credentials or anonymous, and the OAuth2 POST form
 * with the password and refresh_token grants), the JWKS that gateways verify tokens with, and the admin API.
 *
 * Login attempts are limited in the database every replica shares (see {@link loginLimits} for the policy); each
 * attempt is counted before its password is checked. Passwords are checked in a pool of worker threads, never on
 * the event loop, and a login that finds the pool full gets 429 at once. Refresh tokens are bound to the credential
 * that minted them; those of the password grant rotate on every use (see rotateRefreshToken in @lading/metadata).
 */
import { readFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import express, { Express, Request, Response, Router } from 'express';
import ipaddr from 'ipaddr.js';
import { LadingConfig, durationMs } from '@lading/config';
import { Access, PasswordHasher, sessionOf, PasswordPool, PasswordPoolBusyError, SecretCipher, createPasswordPool, inThreadPasswordHasher, parseScopes, secretCipherFromConfig, signToken } from '@lading/access';
import { clientAddress, createServiceApp, finishServiceApp } from '@lading/http';
import * as meta from '@lading/metadata';
import type { Database, LoginLimit } from '@lading/metadata';
import { type OutboxContext, createUuidV7Generator } from '@lading/events';
import { OciError } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import { allowedAccess } from './access-policy';
import { cachedDirectory } from './cached-directory';
import { type DirectoryClient, DirectoryUnavailableError, createLdapDirectory } from './directory';
import { createConsoleSessions } from './console-sessions';
import { createAdminRouter } from './admin-api';
import { createAuthAudit } from './audit-trail';
import { routesOf } from './admin-routes';
import { basicCredentials, checkCredentials } from './credentials';
import { ANONYMOUS, PAT_PREFIX, Principal, ROBOT_PREFIX, createAuthenticator, newSecret, secretDigest } from './principals';
import { KeyRing, createKeyRing } from './signing-keys';
import { IssuerVerifier, OidcClient, OidcTransport, createIssuerVerifier, createOidcClient } from './oidc-client';
import { createOidcSignIn } from './oidc-sign-in';
import { PERSONAL_ACCESS_TOKEN_TYPE, createOidcCliLogin } from './oidc-cli-login';
import { SUBJECT_TOKEN_TYPES, TOKEN_EXCHANGE_GRANT, createWorkloadIdentity } from './workload-identity';

/** What the auth service is built from. */
export interface AuthServiceDeps {
  db: Database;
  config: LadingConfig;
  logger: Logger;
  /**
   * Hashes and checks passwords. A process passes its worker pool ({@link passwordPoolFromConfig}); without one the
   * work runs on the calling thread, which only tests should do.
   */
  passwords?: PasswordHasher;
  /** The key ring; one is made over `db` when omitted. */
  keys?: KeyRing;
  /** The at-rest cipher of stored signing keys and upstream passwords; one is made from `config.secrets` when omitted. */
  secrets?: SecretCipher;
  now?: () => number;
  /** More admin routers, mounted under `/admin/v1` behind the admin guard, by path (e.g. `/gc`, embedded only). */
  adminRouters?: Record<string, Router>;
  /** Puts a change of the stored proxy rules in force in this process at once (a process serving them passes it). */
  proxyRulesChanged?: () => Promise<void>;
  /** Puts a quota change in force in this process's quota checks at once (a process that checks quotas passes it). */
  quotasChanged?: () => Promise<void>;
  /** The directory users sign in with; made from `auth.ldap` (with its cache) when omitted, none when that is unset. */
  directory?: DirectoryClient;
  /** The outbox context of the audit events (logins, admin changes); one for `//<host>/lading/auth` when omitted. */
  events?: OutboxContext;
  /** Called after a transaction that wrote events commits (wakes the outbox relay of the process, if it runs one). */
  onEventsCommitted?: () => void;
  /** How OpenID Providers are reached (HTTP client, clock, JWKS refetch pace); the defaults suit a process. */
  oidcTransport?: OidcTransport;
}

/**
 * The relying party of `auth.oidc`, or null when it is unset. Its client secret is `clientSecret` or the content of
 * `clientSecretFile` (trimmed); the redirect URL defaults to `<http.host>/ui/api/oidc/callback`.
 */
export function oidcClientFromConfig(config: LadingConfig, transport: OidcTransport = {}, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): OidcClient | null {
  const settings = config.auth.oidc;
  if (!settings) return null;
  let clientSecret = settings.clientSecret;
  if (settings.clientSecretFile !== undefined) {
    try {
      clientSecret = readFile(settings.clientSecretFile).trim();
    } catch (err) {
      throw new Error(`auth.oidc.clientSecretFile ${settings.clientSecretFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const redirectUrl = settings.redirectUrl ?? (config.http.host ? `${config.http.host.replace(/\/$/, '')}/ui/api/oidc/callback` : undefined);
  if (!redirectUrl) throw new Error('auth.oidc needs auth.oidc.redirectUrl or http.host (the public URL the provider sends the browser back to)');
  return createOidcClient({ ...transport, issuer: settings.issuer, clientId: settings.clientId, clientSecret, redirectUrl, scopes: settings.scopes });
}

/** The auth service's app and its key ring (an in-process gateway verifies with the same ring). */
export interface AuthService {
  app: Express;
  keys: KeyRing;
  /**
   * A bearer token for a console session's principal, with what it holds of `access`; null when the session is not
   * valid. An in-process gateway's session exchange; a distributed one uses the refresh_token grant of `/token`.
   */
  sessionToken(session: string, access: Access[]): Promise<string | null>;
  /** Every route of the admin API, `METHOD /admin/v1/...` (what the audit trail must record the changes of). */
  adminRoutes: string[];
}

export { basicCredentials } from './credentials';

/** Starts the password-hashing worker pool sized by `auth.hashWorkers` (default: cores - 1, at least 1) and `auth.hashQueue`. */
export function passwordPoolFromConfig(config: LadingConfig): PasswordPool {
  return createPasswordPool({ size: config.auth.hashWorkers ?? Math.max(1, cpus().length - 1), queueLimit: config.auth.hashQueue });
}

/**
 * The counters a login attempt is charged to, each with its limit per `auth.loginWindow`:
 * - the account from this address (`loginFailureLimit`): one guesser on one account is stopped here, and only that
 *   pair is; the owner elsewhere still gets in, and a correct password from this address clears the counter;
 * - the address over every account (`loginAddressLimit`): one address spraying many accounts;
 * - the account from every address (`loginAccountLimit`, much higher): guessing spread over many addresses.
 * A correct password gives back what its attempt took from the other two. Accounts are named by a digest, so a
 * password typed into the username field is not stored in the clear; addresses by {@link loginAddress}.
 *
 * A password attempt is counted before it is checked, so no more than the limit are ever checked, however many
 * arrive at once; the price is that no more than what is left of the limit may be in flight at once for one pair.
 * Robot secrets and personal access tokens are generated secrets far too long to guess: for them the counters are
 * only read before the check and charged after a failure, so that many CI jobs may log in at once.
 */
export function loginLimits(config: LadingConfig, username: string, client: string): { pair: LoginLimit; address: LoginLimit; account: LoginLimit } {
  const account = secretDigest(`account:${username}`);
  const address = loginAddress(client);
  return {
    pair: { key: `pair:${account}@${address}`, limit: config.auth.loginFailureLimit },
    address: { key: `addr:${address}`, limit: config.auth.loginAddressLimit },
    account: { key: `account:${account}`, limit: config.auth.loginAccountLimit },
  };
}

/**
 * The address a login limit counts by: IPv4 as it is (an IPv4-mapped IPv6 address too), IPv6 by its /64, the block
 * one host or one customer usually holds whole, so that walking through its addresses is not a fresh start each time.
 */
export function loginAddress(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const ip = ipaddr.process(address);
  if (ip.kind() === 'ipv4') return ip.toString();
  return `${(ip as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16)).join(':')}::/64`;
}

function list(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

/**
 * The directory of `auth.ldap`, behind its cache (see cached-directory.ts), saying in the log why it cannot answer
 * when it cannot; undefined when `auth.ldap` is unset.
 */
export function directoryFromConfig(config: LadingConfig, logger: Logger, now: () => number): DirectoryClient | undefined {
  const settings = config.auth.ldap;
  if (!settings) return undefined;
  const ldap = createLdapDirectory({ settings });
  const logged: DirectoryClient = {
    async authenticate(username, password) {
      try {
        return await ldap.authenticate(username, password);
      } catch (error) {
        if (error instanceof DirectoryUnavailableError) logger.warn({ url: settings.url, reason: error.message }, 'directory sign-in failed: the directory cannot answer');
        throw error;
      }
    },
  };
  return cachedDirectory(logged, { cacheTtlMs: durationMs(settings.cacheTtl), negativeCacheTtlMs: durationMs(settings.negativeCacheTtl), now });
}

/** A full pool is the sender's cue to retry shortly, not a failure: 429 with Retry-After. */
function whenPoolBusy(error: unknown): never {
  if (error instanceof PasswordPoolBusyError) {
    throw new OciError('TOOMANYREQUESTS', 'too many logins at once; try again shortly', undefined, { headers: { 'Retry-After': '1' } });
  }
  throw error;
}

/** Creates the auth service. */
export function createAuthService(deps: AuthServiceDeps): AuthService {
  const { db, config } = deps;
  const now = deps.now ?? Date.now;
  const secrets = deps.secrets ?? secretCipherFromConfig(config.secrets);
  const keys = deps.keys ?? createKeyRing(db, secrets);
  const hasher = deps.passwords ?? inThreadPasswordHasher;
  const passwords: PasswordHasher = {
    hash: (password) => hasher.hash(password).catch(whenPoolBusy),
    verify: (password, encoded) => hasher.verify(password, encoded).catch(whenPoolBusy),
  };
  const directory = deps.directory ?? directoryFromConfig(config, deps.logger, now);
  const authenticator = createAuthenticator(db, passwords, now, directory);
  const audit = createAuthAudit({
    db,
    config,
    logger: deps.logger,
    events: deps.events ?? { source: `//${config.http.host ? new URL(config.http.host).host : hostname()}/lading/auth`, ids: createUuidV7Generator(), now: () => new Date(now()) },
    onEventsCommitted: deps.onEventsCommitted,
  });
  const tokenTtlMs = durationMs(config.auth.tokenTtl);
  const refreshTtlMs = durationMs(config.auth.refreshTtl);
  const windowMs = durationMs(config.auth.loginWindow);
  const oidcClient = oidcClientFromConfig(config, deps.oidcTransport);
  const issuerVerifiers = new Map<string, IssuerVerifier>();
  const workloadIdentity = createWorkloadIdentity({
    db,
    rules: config.auth.workloadIdentity,
    logger: deps.logger,
    verifierFor(issuer) {
      let verifier = issuerVerifiers.get(issuer);
      if (!verifier) issuerVerifiers.set(issuer, (verifier = createIssuerVerifier(issuer, deps.oidcTransport)));
      return verifier;
    },
  });

  /** True when a name belongs to an account (so a failed login may name it in the log: it is not a password). */
  async function isAccount(username: string): Promise<boolean> {
    if (username.startsWith(ROBOT_PREFIX)) return (await meta.findRobot(db, username.slice(ROBOT_PREFIX.length))) !== null;
    return (await meta.findUser(db, username)) !== null;
  }

  function tooMany(retryAfterSeconds: number): OciError {
    return new OciError('TOOMANYREQUESTS', 'too many login attempts; try again later', undefined, { headers: { 'Retry-After': String(retryAfterSeconds) } });
  }

  /** Authenticates within the login limits (see {@link loginLimits}): 429 with Retry-After, or 401 for wrong credentials. */
  async function login(req: Request, username: string, password: string): Promise<Principal> {
    checkCredentials({ username, password });
    const addr = clientAddress(req, config.http.trustedProxies);
    const limits = loginLimits(config, username, addr);
    const all = [limits.pair, limits.address, limits.account];
    const counted = all.map((l) => l.key);
    const generated = username.startsWith(ROBOT_PREFIX) || password.startsWith(PAT_PREFIX);
    const method = username.startsWith(ROBOT_PREFIX) ? 'robot' : password.startsWith(PAT_PREFIX) ? 'token' : 'password';
    // A failed attempt names the account only when it is one: a name that is not may be a password in the wrong field.
    const failed = async (reason: 'invalid' | 'limited') =>
      audit.login(req, { subject: (await isAccount(username)) ? username : '', result: 'failure', reason, method });
    if (generated) {
      const wait = await meta.loginRefusal(db, all, windowMs);
      if (wait !== null) {
        await failed('limited');
        throw tooMany(wait);
      }
    } else {
      const reservation = await meta.reserveLoginAttempt(db, all, windowMs);
      if (!reservation.admitted) {
        await failed('limited');
        throw tooMany(reservation.retryAfterSeconds);
      }
    }
    let principal: Principal | null;
    try {
      principal = await authenticator.authenticate(username, password);
    } catch (error) {
      // Never checked (the pool was full, the database failed): the attempt is given back.
      if (!generated) await meta.releaseLoginAttempt(db, counted).catch(() => undefined);
      throw error;
    }
    if (!principal) {
      if (generated) await meta.reserveLoginAttempt(db, all, windowMs);
      // The name is logged only when it is an account's: a name that is not may be a password in the wrong field.
      deps.logger.info({ ...((await isAccount(username)) ? { user: username } : { unknownAccount: true }), addr }, 'failed login');
      await failed('invalid');
      throw new OciError('UNAUTHORIZED', 'invalid username or password');
    }
    await audit.login(req, { subject: principal.name, result: 'success', reason: null, method });
    if (!generated) {
      await meta.clearLoginFailures(db, [limits.pair.key]);
      await meta.releaseLoginAttempt(db, [limits.address.key, limits.account.key]);
    }
    return principal;
  }

  function checkService(service: string | undefined): void {
    if (service !== undefined && service !== config.auth.service) {
      throw new OciError('UNAUTHORIZED', `tokens are issued for service ${config.auth.service}`, { service });
    }
  }

  async function issue(principal: Principal, requested: Access[], service: string | undefined): Promise<Record<string, unknown>> {
    checkService(service);
    return sign(principal.name, await allowedAccess(db, principal, requested), tokenTtlMs, principal.groups);
  }

  /**
   * A registry token for a subject holding `access`, valid `ttlMs`; with the subject's `groups` (so that the services
   * listing what it may pull count its group grants, as `access` already does).
   */
  async function sign(subject: string, access: Access[], ttlMs: number, groups?: readonly string[]): Promise<Record<string, unknown>> {
    const issuedAt = Math.floor(now() / 1000);
    const token = signToken(await keys.signingKey(), {
      iss: config.auth.issuer,
      sub: subject,
      aud: config.auth.service,
      exp: issuedAt + Math.floor(ttlMs / 1000),
      nbf: issuedAt,
      iat: issuedAt,
      jti: randomUUID(),
      access,
      ...(groups?.length ? { groups: [...groups] } : {}),
    });
    return {
      token,
      access_token: token,
      expires_in: Math.floor(ttlMs / 1000),
      issued_at: new Date(issuedAt * 1000).toISOString(),
    };
  }

  /**
   * A new refresh token, the first of its family, bound to the credential the principal proved itself with. Those of
   * the OAuth2 password grant rotate on every use; Docker's identity tokens (GET with offline_token=true, what
   * `docker login` asks for) cannot, because the daemon stores the first one and presents it unchanged ever after.
   */
  async function newRefreshToken(principal: Principal, rotating: boolean): Promise<string | undefined> {
    if (principal.type === 'anonymous' || !principal.credential) return undefined;
    const refresh = newSecret('lrt_');
    const holder = { principalType: principal.type, principalName: principal.name, credential: principal.credential, rotating, groups: principal.groups };
    await meta.insertRefreshToken(db, secretDigest(refresh), holder, randomUUID(), new Date(now() + refreshTtlMs));
    return refresh;
  }

  function send(res: Response, body: Record<string, unknown>): void {
    res.setHeader('Cache-Control', 'no-store');
    res.json(body);
  }

  const service = createServiceApp(async () => {
    await meta.pingDatabase(db);
  });

  service.get('/token', async (req, res) => {
    const credentials = basicCredentials(req.headers.authorization);
    const principal = credentials ? await login(req, credentials.username, credentials.password) : ANONYMOUS;
    const service = typeof req.query.service === 'string' ? req.query.service : undefined;
    const body = await issue(principal, parseScopes(list(req.query.scope)), service);
    const refresh = req.query.offline_token === 'true' ? await newRefreshToken(principal, false) : undefined;
    send(res, refresh ? { ...body, refresh_token: refresh } : body);
  });

  service.post('/token', express.urlencoded({ extended: false, limit: '16kb' }), async (req, res) => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    const grant = form.grant_type;
    const scopes = parseScopes(list(form.scope));
    const svc = typeof form.service === 'string' ? form.service : undefined;
    if (grant === 'password') {
      if (typeof form.username !== 'string' || typeof form.password !== 'string') throw new OciError('UNAUTHORIZED', 'username and password are required');
      const principal = await login(req, form.username, form.password);
      const body = await issue(principal, scopes, svc);
      const refresh = form.access_type === 'offline' ? await newRefreshToken(principal, true) : undefined;
      send(res, refresh ? { ...body, refresh_token: refresh } : body);
      return;
    }
    if (grant === 'refresh_token') {
      if (typeof form.refresh_token !== 'string') throw new OciError('UNAUTHORIZED', 'refresh_token is required');
      if (svc !== undefined && svc !== config.auth.service) throw new OciError('UNAUTHORIZED', `tokens are issued for service ${config.auth.service}`, { service: svc });
      // Each use retires a rotating token and hands out its successor; a retired token presented again ends its family.
      const next = newSecret('lrt_');
      const outcome = await meta.rotateRefreshToken(db, secretDigest(form.refresh_token), secretDigest(next), new Date(now() + refreshTtlMs));
      if (outcome.status === 'replayed') deps.logger.warn('a retired refresh token was presented again; its family is revoked');
      if (outcome.status !== 'valid') {
        await audit.login(req, { subject: '', result: 'failure', reason: 'invalid', method: 'refresh' });
        throw new OciError('UNAUTHORIZED', 'invalid refresh token');
      }
      const { holder } = outcome;
      const principal: Principal = { type: holder.principalType, name: holder.principalName, isAdmin: outcome.isAdmin, credential: holder.credential, ...(holder.groups ? { groups: holder.groups } : {}) };
      await audit.login(req, { subject: principal.name, result: 'success', reason: null, method: 'refresh' });
      send(res, { ...(await issue(principal, scopes, svc)), refresh_token: outcome.rotated ? next : form.refresh_token });
      return;
    }
    if (grant === TOKEN_EXCHANGE_GRANT) {
      // RFC 8693: a CI job's ID token (workload identity) for a short-lived registry token; see workload-identity.ts.
      if (typeof form.subject_token !== 'string' || form.subject_token === '' || form.subject_token.length > 16_384) {
        throw new OciError('UNSUPPORTED', 'subject_token is required', undefined, { status: 400 });
      }
      if (typeof form.subject_token_type !== 'string' || !SUBJECT_TOKEN_TYPES.includes(form.subject_token_type)) {
        throw new OciError('UNSUPPORTED', `subject_token_type must be one of ${SUBJECT_TOKEN_TYPES.join(', ')}`, undefined, { status: 400 });
      }
      if (form.requested_token_type === PERSONAL_ACCESS_TOKEN_TYPE) {
        // `lading-admin login`: an ID token of the CLI's client, from the device grant, for a personal access token.
        if (!cliLogin) throw new OciError('UNSUPPORTED', 'sign-in from the CLI is not configured (auth.oidc.cliClientId)', undefined, { status: 400 });
        send(res, await cliLogin.exchange(form.subject_token));
        return;
      }
      checkService(svc);
      const grantOf = await workloadIdentity.exchange(form.subject_token, scopes);
      const body = await sign(grantOf.subject, grantOf.access, grantOf.tokenTtlMs);
      send(res, { ...body, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer' });
      return;
    }
    throw new OciError('UNSUPPORTED', `grant_type must be password, refresh_token or ${TOKEN_EXCHANGE_GRANT}`, undefined, { status: 400 });
  });

  service.get('/.well-known/jwks.json', async (_req, res) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.json(await keys.jwks());
  });

  const sessions = createConsoleSessions({ db, config, now, login, oidc: oidcClient !== null, providerLogoutUrl: oidcClient ? () => oidcClient.endSessionUrl() : undefined });
  service.use(sessions.router);
  const oidcDeps = oidcClient && config.auth.oidc ? { db, config, settings: config.auth.oidc, client: oidcClient, logger: deps.logger, now } : null;
  if (oidcDeps) service.use(createOidcSignIn(oidcDeps));
  const cliLogin = oidcDeps && oidcDeps.settings.cliClientId ? createOidcCliLogin({ ...oidcDeps, cliClientId: oidcDeps.settings.cliClientId }) : null;
  if (cliLogin) service.use(cliLogin.router);

  const adminRouter = createAdminRouter({
      db,
      config,
      logger: deps.logger,
      keys,
      login,
      audit,
      now,
      passwords,
      routers: deps.adminRouters,
      secrets,
      proxyRulesChanged: deps.proxyRulesChanged,
      quotasChanged: deps.quotasChanged,
      sessionPrincipal: async (req) => {
        const session = sessionOf(req.headers);
        return session ? sessions.principalOf(session) : null;
      },
    });
  service.use('/admin/v1', adminRouter);
  return {
    app: finishServiceApp(service, deps.logger),
    keys,
    adminRoutes: routesOf(adminRouter, '/admin/v1').map((r) => `${r.method} ${r.path}`),
    async sessionToken(session, access) {
      const principal = await sessions.principalOf(session);
      return principal ? ((await issue(principal, access, undefined)).token as string) : null;
    },
  };
}

/** Creates the first admin from the configuration when no admin exists; says so either way. */
export async function bootstrapAdmin(db: Database, config: LadingConfig, logger: Logger, hash: (password: string) => Promise<string>): Promise<void> {
  if (!config.admin.user || !config.admin.password) return;
  if (await meta.adminExists(db)) {
    logger.info({ user: config.admin.user }, 'an admin already exists; LADING_ADMIN_USER and LADING_ADMIN_PASSWORD are ignored');
    return;
  }
  if (!(await meta.createUser(db, config.admin.user, await hash(config.admin.password), true))) {
    // The name belongs to a user who is not an active admin: never promote it or change its password from here.
    logger.error({ user: config.admin.user }, 'LADING_ADMIN_USER names an existing user that is not an active admin; it was left unchanged and no admin was created');
    return;
  }
  logger.warn({ user: config.admin.user }, 'created the first admin from LADING_ADMIN_USER; change its password');
}
