/**
 * The auth service: the Docker token endpoint (GET with Basic credentials or anonymous, and the OAuth2 POST form
 * with the password and refresh_token grants), the JWKS that gateways verify tokens with, and the admin API.
 * Failed logins are rate-limited per account and per address.
 */
import { randomUUID } from 'node:crypto';
import express, { Express, Request, Response, Router } from 'express';
import { LadingConfig, durationMs } from '@lading/config';
import { Access, parseScopes, signToken } from '@lading/access';
import { clientAddress, createServiceApp, finishServiceApp } from '@lading/http';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import { OciError } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import { allowedAccess } from './access-policy';
import { createAdminRouter } from './admin-api';
import { ANONYMOUS, Principal, authenticate, newSecret, principalBySubject, secretDigest } from './principals';
import { KeyRing, createKeyRing } from './signing-keys';

/** What the auth service is built from. */
export interface AuthServiceDeps {
  db: Database;
  config: LadingConfig;
  logger: Logger;
  /** The key ring; one is made over `db` when omitted. */
  keys?: KeyRing;
  now?: () => number;
  /** More admin routers, mounted under `/admin/v1` behind the admin guard, by path (e.g. `/gc`, embedded only). */
  adminRouters?: Record<string, Router>;
}

/** The auth service's app and its key ring (an in-process gateway verifies with the same ring). */
export interface AuthService {
  app: Express;
  keys: KeyRing;
}

/** Parses `Authorization: Basic …`; null when absent or not Basic. */
export function basicCredentials(req: Request): { username: string; password: string } | null {
  const header = req.headers.authorization;
  if (!header || !/^basic /i.test(header)) return null;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function list(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

/** Creates the auth service. */
export function createAuthService(deps: AuthServiceDeps): AuthService {
  const { db, config } = deps;
  const now = deps.now ?? Date.now;
  const keys = deps.keys ?? createKeyRing(db);
  const tokenTtlMs = durationMs(config.auth.tokenTtl);
  const refreshTtlMs = durationMs(config.auth.refreshTtl);
  const windowMs = durationMs(config.auth.loginWindow);

  /** Authenticates with rate limiting: 429 with Retry-After once an account or address has failed too often. */
  async function login(req: Request, username: string, password: string): Promise<Principal> {
    const limitKeys = [`account:${username}`, `addr:${clientAddress(req, config.http.trustedProxies)}`];
    const { failures, retryAfterSeconds } = await meta.loginFailures(db, limitKeys, windowMs);
    if (failures >= config.auth.loginFailureLimit) {
      throw new OciError('TOOMANYREQUESTS', 'too many failed logins; try again later', undefined, { headers: { 'Retry-After': String(retryAfterSeconds) } });
    }
    const principal = await authenticate(db, username, password);
    if (!principal) {
      await meta.recordLoginFailure(db, limitKeys, windowMs);
      deps.logger.info({ username, addr: clientAddress(req, config.http.trustedProxies) }, 'failed login');
      throw new OciError('UNAUTHORIZED', 'invalid username or password');
    }
    await meta.clearLoginFailures(db, [`account:${username}`]);
    return principal;
  }

  async function issue(principal: Principal, requested: Access[], service: string | undefined, offline: boolean): Promise<Record<string, unknown>> {
    if (service !== undefined && service !== config.auth.service) {
      throw new OciError('UNAUTHORIZED', `tokens are issued for service ${config.auth.service}`, { service });
    }
    const access = await allowedAccess(db, principal, requested);
    const issuedAt = Math.floor(now() / 1000);
    const token = signToken(await keys.signingKey(), {
      iss: config.auth.issuer,
      sub: principal.name,
      aud: config.auth.service,
      exp: issuedAt + Math.floor(tokenTtlMs / 1000),
      nbf: issuedAt,
      iat: issuedAt,
      jti: randomUUID(),
      access,
    });
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: Math.floor(tokenTtlMs / 1000),
      issued_at: new Date(issuedAt * 1000).toISOString(),
    };
    if (offline && principal.type !== 'anonymous') {
      const refresh = newSecret('lrt_');
      await meta.insertRefreshToken(db, secretDigest(refresh), principal.type, principal.name, new Date(now() + refreshTtlMs));
      body.refresh_token = refresh;
    }
    return body;
  }

  function send(res: Response, body: Record<string, unknown>): void {
    res.setHeader('Cache-Control', 'no-store');
    res.json(body);
  }

  const service = createServiceApp(async () => {
    await db.query('SELECT 1');
  });

  service.get('/token', async (req, res) => {
    const credentials = basicCredentials(req);
    const principal = credentials ? await login(req, credentials.username, credentials.password) : ANONYMOUS;
    const service = typeof req.query.service === 'string' ? req.query.service : undefined;
    send(res, await issue(principal, parseScopes(list(req.query.scope)), service, req.query.offline_token === 'true'));
  });

  service.post('/token', express.urlencoded({ extended: false, limit: '16kb' }), async (req, res) => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    const grant = form.grant_type;
    const scopes = parseScopes(list(form.scope));
    const svc = typeof form.service === 'string' ? form.service : undefined;
    if (grant === 'password') {
      if (typeof form.username !== 'string' || typeof form.password !== 'string') throw new OciError('UNAUTHORIZED', 'username and password are required');
      const principal = await login(req, form.username, form.password);
      send(res, await issue(principal, scopes, svc, form.access_type === 'offline'));
      return;
    }
    if (grant === 'refresh_token') {
      if (typeof form.refresh_token !== 'string') throw new OciError('UNAUTHORIZED', 'refresh_token is required');
      const holder = await meta.findRefreshToken(db, secretDigest(form.refresh_token));
      const principal = holder ? await principalBySubject(db, holder.principalType, holder.principalName) : null;
      if (!principal) throw new OciError('UNAUTHORIZED', 'invalid refresh token');
      const body = await issue(principal, scopes, svc, false);
      send(res, { ...body, refresh_token: form.refresh_token });
      return;
    }
    throw new OciError('UNSUPPORTED', 'grant_type must be password or refresh_token', undefined, { status: 400 });
  });

  service.get('/.well-known/jwks.json', async (_req, res) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.json(await keys.jwks());
  });

  service.use('/admin/v1', createAdminRouter({ db, config, logger: deps.logger, keys, login, now, routers: deps.adminRouters }));
  return { app: finishServiceApp(service, deps.logger), keys };
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
