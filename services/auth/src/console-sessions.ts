/**
 * The web console's sessions (`/ui/api/session`), kept by the auth service beside the credentials they come from.
 *
 * Signing in is a login like the token endpoint's (the same limits, a password or a personal access token, robots
 * too); what it gets is a session: a secret in an HttpOnly, SameSite=Strict cookie, stored as a non-rotating
 * refresh token that expires `console.sessionTtl` after sign-in (not sliding). So a session lives in Postgres, is
 * seen by every replica, and dies with its credential (a password change, a disabled user, a revoked token), like
 * any refresh token. Signing out revokes it. Gateways turn a session into bearer tokens through the refresh_token
 * grant (see session-tokens.ts of the gateway), and the admin API accepts it in place of Basic credentials.
 *
 * CSRF: the token is derived from the session (`csrfTokenOf`); the gateway checks it on every request that carries
 * the cookie and changes something, this sign-out included.
 */
import { randomUUID } from 'node:crypto';
import express, { Request, Response, Router } from 'express';
import { type LadingConfig, durationMs } from '@lading/config';
import { SESSION_PREFIX, clearedSessionCookie, csrfTokenOf, sessionCookie, sessionOf } from '@lading/access';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import { OciError } from '@lading/oci';
import { adminScopeOf } from './admin-authorization';
import { checkCredentials } from './credentials';
import { Principal, newSecret, secretDigest } from './principals';

/** What the console's sessions are built from. */
export interface ConsoleSessionDeps {
  db: Database;
  config: LadingConfig;
  now: () => number;
  /** The token endpoint's login, within its limits: the principal, or 401/429. */
  login(req: Request, username: string, password: string): Promise<Principal>;
  /** Whether company sign-in (`/ui/api/oidc/login`) is offered: `GET /ui/api/session` tells the console. */
  oidc?: boolean;
  /**
   * Where to send the browser after signing out of a session that signed in through the provider, so that the
   * provider's own session ends too (its end_session_endpoint), or null when it has none.
   */
  providerLogoutUrl?: () => Promise<string | null>;
}

/** The console's sessions: their routes and the principal of a session. */
export interface ConsoleSessions {
  /** `GET`, `POST` and `DELETE /ui/api/session`. */
  router: Router;
  /** The principal a session speaks for, or null when it is unknown, expired, signed out or its credential died. */
  principalOf(session: string): Promise<Principal | null>;
}

/**
 * Starts a session for a principal that has just signed in (with a password, or through the OpenID Provider);
 * returns its secret. The principal's groups, if any, are stored with it.
 */
export async function startSession(deps: Pick<ConsoleSessionDeps, 'db' | 'config' | 'now'>, principal: Principal): Promise<string> {
  if (principal.type === 'anonymous' || !principal.credential) throw new OciError('UNAUTHORIZED', 'invalid username or password');
  const session = newSecret(SESSION_PREFIX);
  const holder = { principalType: principal.type, principalName: principal.name, credential: principal.credential, rotating: false, ...(principal.groups ? { groups: principal.groups } : {}) };
  await meta.insertRefreshToken(deps.db, secretDigest(session), holder, randomUUID(), new Date(deps.now() + durationMs(deps.config.console.sessionTtl)));
  return session;
}

/** Reads the sign-in body: `{"username": "...", "password": "..."}`, both non-empty strings. */
function signInCredentials(body: unknown): { username: string; password: string } {
  const fields = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const { username, password } = fields;
  if (typeof username !== 'string' || typeof password !== 'string' || username === '' || password === '' || username.length > 256 || password.length > 1024) {
    throw new OciError('UNSUPPORTED', 'the body must be {"username": "...", "password": "..."}', undefined, { status: 400 });
  }
  return checkCredentials({ username, password });
}

/** Creates the console's sessions. */
export function createConsoleSessions(deps: ConsoleSessionDeps): ConsoleSessions {
  const { db, config } = deps;
  const secure = config.console.secureCookie;
  const maxAgeSeconds = Math.floor(durationMs(config.console.sessionTtl) / 1000);

  async function principalOf(session: string): Promise<Principal | null> {
    // A session is a non-rotating refresh token: this checks it (and its credential) and changes nothing.
    const outcome = await meta.rotateRefreshToken(db, secretDigest(session), secretDigest(newSecret(SESSION_PREFIX)), new Date(deps.now()));
    if (outcome.status !== 'valid') return null;
    const { holder } = outcome;
    return { type: holder.principalType, name: holder.principalName, isAdmin: outcome.isAdmin, credential: holder.credential, ...(holder.groups ? { groups: holder.groups } : {}) };
  }

  /**
   * The namespaces a signed-in non-admin user administers (its groups' grants included), as the admin API's door
   * reckons them (adminScopeOf): the console shows such a user the admin pages it may use. Empty for a global admin
   * (`admin` says it all), robots, and anybody else.
   */
  async function adminOf(principal: Principal | null): Promise<string[]> {
    if (!principal || principal.isAdmin) return [];
    const scope = await adminScopeOf(db, principal);
    return scope ? [...scope.namespaces].sort() : [];
  }

  function send(res: Response, body: unknown): void {
    res.setHeader('Cache-Control', 'no-store');
    res.json(body);
  }

  const router = Router();
  router.get('/ui/api/session', async (req, res) => {
    const session = config.auth.enabled ? sessionOf(req.headers) : null;
    const principal = session ? await principalOf(session) : null;
    if (session && !principal) res.setHeader('Set-Cookie', clearedSessionCookie(secure));
    const viaProvider = principal?.credential?.kind === 'oidc' && deps.providerLogoutUrl;
    // A provider that cannot be reached just now costs the console its link to the provider's logout, nothing else.
    const logoutUrl = viaProvider ? await deps.providerLogoutUrl!().catch(() => null) : null;
    send(res, {
      user: principal?.name ?? null,
      admin: principal?.isAdmin ?? false,
      adminOf: await adminOf(principal),
      csrf: principal && session ? csrfTokenOf(session) : null,
      auth: config.auth.enabled,
      // Said only when offered, so the answer of a registry without company sign-in is as it was.
      ...(config.auth.enabled && deps.oidc === true ? { oidc: true } : {}),
      ...(logoutUrl ? { logoutUrl } : {}),
    });
  });
  router.post('/ui/api/session', express.json({ limit: '16kb' }), async (req, res) => {
    if (!config.auth.enabled) throw new OciError('UNSUPPORTED', 'auth is off on this registry: there is nothing to sign in to', undefined, { status: 400 });
    const credentials = signInCredentials(req.body);
    const principal = await deps.login(req, credentials.username, credentials.password);
    const session = await startSession(deps, principal);
    res.setHeader('Set-Cookie', sessionCookie(session, { maxAgeSeconds, secure }));
    send(res, { user: principal.name, admin: principal.isAdmin, adminOf: await adminOf(principal), csrf: csrfTokenOf(session) });
  });
  router.delete('/ui/api/session', async (req, res) => {
    const session = sessionOf(req.headers);
    if (session) await meta.revokeRefreshToken(db, secretDigest(session));
    res.setHeader('Set-Cookie', clearedSessionCookie(secure));
    res.setHeader('Cache-Control', 'no-store');
    res.status(204).end();
  });
  return { router, principalOf };
}
