/**
 * Company sign-in to the web console: the authorization code flow with PKCE against the OpenID Provider of
 * `auth.oidc` (`GET /ui/api/oidc/login`, then the provider sends the browser to `GET /ui/api/oidc/callback`).
 *
 * Between the two, the sign-in's state, nonce and PKCE verifier are kept in the database (`oidc_logins`, by a digest
 * of the state), so the callback may reach any auth replica; the state also rides in a short-lived HttpOnly cookie
 * (SameSite=Lax, so that it comes back on the provider's top-level redirect) and the callback must present both:
 * a callback started in another browser (login CSRF) is refused. A state is taken by its callback, so it works once.
 *
 * The ID token is verified (signature against the provider's JWKS, iss, aud, exp, nonce); then the allowed domains
 * and groups apply; then the user linked to (issuer, sub) is found or made just in time (never matched by e-mail,
 * see oidc-identities.ts), and a console session is started exactly as a password sign-in starts one, carrying
 * the groups the provider named.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Request, Response, Router } from 'express';
import { type LadingConfig, type OidcConfig, durationMs } from '@lading/config';
import { sessionCookie } from '@lading/access';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import { OciError } from '@lading/oci';
import type { Logger } from '@lading/telemetry';
import { startSession } from './console-sessions';
import { OidcClient, OidcError, VerifiedClaims } from './oidc-client';
import type { Principal } from './principals';

/** The cookie that carries a sign-in's state from the redirect to the callback. */
export const OIDC_STATE_COOKIE = 'lading_oidc';

/** How long a sign-in may take at the provider. */
const SIGN_IN_TTL_SECONDS = 600;

/** A username a sign-in may make: what a user name may hold (no control characters, no `robot$`, no `wi$`). */
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;

/** What the sign-in routes are built from. */
export interface OidcSignInDeps {
  db: Database;
  config: LadingConfig;
  settings: OidcConfig;
  client: OidcClient;
  logger: Logger;
  now: () => number;
}

function stateDigest(state: string): string {
  return createHash('sha256').update(state).digest('hex');
}

function stateCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${OIDC_STATE_COOKIE}=${value}; Max-Age=${maxAgeSeconds}; Path=/ui/api/oidc; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

function cookieValue(req: Request, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

function sameSecret(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Why a company sign-in was refused, as the console names it: the callback sends a browser back to
 * `/ui/sign-in?refused=<reason>`, and the console words each one (never a text of the URL's).
 */
export type SignInRefusalReason = 'not-allowed' | 'disabled' | 'username' | 'name-taken' | 'failed' | 'unavailable';

function refused(message: string, status = 401, reason: SignInRefusalReason = 'failed'): OciError {
  return new OciError(status === 401 ? 'UNAUTHORIZED' : 'DENIED', message, { reason }, { status });
}

/** The refusal reason of an error thrown by the callback. */
function refusalReason(err: OciError): SignInRefusalReason {
  const reason = (err.detail as { reason?: SignInRefusalReason } | null)?.reason;
  if (reason) return reason;
  return err.status === 503 ? 'unavailable' : 'failed';
}

/** The groups a claim lists: a list of strings, or one string; anything else lists none. */
export function groupsOf(claim: unknown): string[] {
  if (typeof claim === 'string') return [claim];
  if (Array.isArray(claim)) return claim.filter((g): g is string => typeof g === 'string' && g.length > 0 && g.length <= 256);
  return [];
}

/**
 * Whether the claims pass `allowedDomains` and `allowedGroups`: null when they do, else why not. A domain is taken
 * from the `email` claim, which must not be marked unverified.
 */
export function admissionRefusal(settings: OidcConfig, claims: VerifiedClaims, groups: readonly string[]): string | null {
  if (settings.allowedDomains.length > 0) {
    const email = typeof claims.email === 'string' ? claims.email.toLowerCase() : '';
    const domain = email.includes('@') ? email.slice(email.lastIndexOf('@') + 1) : '';
    if (!domain || claims.email_verified === false) return 'the provider names no verified e-mail address in an allowed domain';
    if (!settings.allowedDomains.some((d) => d.toLowerCase() === domain)) return `e-mail addresses of ${domain} may not sign in here`;
  }
  if (settings.allowedGroups.length > 0 && !groups.some((g) => settings.allowedGroups.includes(g))) return 'the user is in none of the groups allowed to sign in';
  return null;
}

/**
 * The principal verified claims of the provider sign in as: the allowed domains and groups applied, then the user
 * linked to (issuer, sub) found or made just in time. Throws 403 (not allowed, disabled, unusable username) or 409
 * (the username is another account's). The one admission of the browser callback and of `lading-admin login`.
 */
export async function admitIdentity(deps: Pick<OidcSignInDeps, 'db' | 'settings' | 'client' | 'logger'>, claims: VerifiedClaims): Promise<Principal> {
  const { settings, client } = deps;
  const groups = groupsOf(claims[settings.groupsClaim]);
  const refusal = admissionRefusal(settings, claims, groups);
  if (refusal) {
    deps.logger.info({ issuer: client.issuer, subject: claims.sub, reason: refusal }, 'refused an OpenID Connect sign-in');
    throw refused(refusal, 403, 'not-allowed');
  }
  const username = claims[settings.usernameClaim];
  if (typeof username !== 'string' || !USERNAME.test(username)) {
    throw refused(`the identity provider's ${settings.usernameClaim} claim is not a usable user name`, 403, 'username');
  }
  const outcome = await meta.signInOidcIdentity(deps.db, {
    issuer: client.issuer,
    subject: claims.sub,
    username,
    email: typeof claims.email === 'string' ? claims.email : null,
  });
  if (outcome.status === 'name-taken') {
    deps.logger.warn({ issuer: client.issuer, subject: claims.sub, user: username }, 'an OpenID Connect sign-in names an existing user it is not linked to; refused');
    throw new OciError('DENIED', `the user name ${username} belongs to another account on this registry; an admin must resolve it`, { reason: 'name-taken' }, { status: 409 });
  }
  if (outcome.status === 'disabled') throw refused(`the user ${outcome.name} is disabled`, 403, 'disabled');
  const { user } = outcome;
  if (outcome.created) deps.logger.info({ user: user.name, issuer: client.issuer }, 'made a user on its first OpenID Connect sign-in');
  return { type: 'user', name: user.name, isAdmin: user.isAdmin, credential: { kind: 'oidc', userId: user.id }, groups };
}

/** Creates `GET /ui/api/oidc/login` and `GET /ui/api/oidc/callback`. */
export function createOidcSignIn(deps: OidcSignInDeps): Router {
  const { db, config, client } = deps;
  const secure = config.console.secureCookie;
  const router = Router();

  router.get('/ui/api/oidc/login', async (_req: Request, res: Response) => {
    if (!config.auth.enabled) throw new OciError('UNSUPPORTED', 'auth is off on this registry: there is nothing to sign in to', undefined, { status: 400 });
    const signIn = client.newSignIn();
    let location: string;
    try {
      location = await client.authorizationUrl(signIn);
    } catch (err) {
      deps.logger.error({ err, issuer: client.issuer }, 'the OpenID Provider could not be reached for a sign-in');
      throw new OciError('UNAVAILABLE', 'the identity provider cannot be reached; try again later');
    }
    await meta.insertOidcLogin(db, stateDigest(signIn.state), { nonce: signIn.nonce, codeVerifier: signIn.codeVerifier }, new Date(deps.now() + SIGN_IN_TTL_SECONDS * 1000));
    res.setHeader('Set-Cookie', stateCookie(signIn.state, SIGN_IN_TTL_SECONDS, secure));
    res.setHeader('Cache-Control', 'no-store');
    res.redirect(302, location);
  });

  router.get('/ui/api/oidc/callback', async (req: Request, res: Response) => {
    try {
      await callback(req, res);
    } catch (err) {
      // A person's browser lands here from the provider: it is sent back to the console, which says why in words,
      // rather than shown an API's JSON. Other clients get the error as it is.
      if (!(err instanceof OciError) || !(req.headers.accept ?? '').includes('text/html')) throw err;
      res.setHeader('Cache-Control', 'no-store');
      res.redirect(302, `/ui/sign-in?refused=${refusalReason(err)}`);
    }
  });

  async function callback(req: Request, res: Response): Promise<void> {
    if (!config.auth.enabled) throw new OciError('UNSUPPORTED', 'auth is off on this registry: there is nothing to sign in to', undefined, { status: 400 });
    res.setHeader('Cache-Control', 'no-store');
    const { code, state, error } = req.query;
    if (typeof error === 'string') throw refused(`the identity provider refused the sign-in (${error.replace(/[^\w.-]/g, '').slice(0, 64)})`);
    if (typeof code !== 'string' || typeof state !== 'string' || code === '' || state === '' || code.length > 2048 || state.length > 256) {
      throw new OciError('UNSUPPORTED', 'the callback needs one code and one state', undefined, { status: 400 });
    }
    const cookie = cookieValue(req, OIDC_STATE_COOKIE);
    // The state cookie is spent whatever happens next.
    res.setHeader('Set-Cookie', stateCookie('', 0, secure));
    if (!cookie || !sameSecret(cookie, state)) throw refused('the sign-in state does not match this browser\'s; start the sign-in again');
    const login = await meta.takeOidcLogin(db, stateDigest(state));
    if (!login) throw refused('the sign-in is unknown, already finished or expired; start it again');

    let claims: VerifiedClaims;
    try {
      claims = await client.finishSignIn(code, login);
    } catch (err) {
      if (!(err instanceof OidcError)) throw err;
      deps.logger.warn({ issuer: client.issuer, reason: err.message }, 'refused an OpenID Connect sign-in');
      throw refused(`sign-in refused: ${err.message}`);
    }
    const principal = await admitIdentity(deps, claims);
    const session = await startSession({ db, config, now: deps.now }, principal);
    deps.logger.info({ user: principal.name, issuer: client.issuer, groups: principal.groups?.length ?? 0 }, 'signed in through the OpenID Provider');
    res.setHeader('Set-Cookie', [stateCookie('', 0, secure), sessionCookie(session, { maxAgeSeconds: Math.floor(durationMs(config.console.sessionTtl) / 1000), secure })]);
    res.redirect(302, '/ui/');
  }

  return router;
}
