/**
 * The web console's session, as the gateway and the auth service both read it: a cookie holding an opaque secret
 * (stored by the auth service as the digest of a non-rotating refresh token, so it dies with the credential that
 * signed in, like any refresh token), and the CSRF token derived from it.
 *
 * The CSRF token is a keyed hash of the session secret: whoever holds the cookie's value can compute it, nobody else
 * can (the cookie is HttpOnly, and another origin cannot read `GET /ui/api/session`). So the gateway checks it on
 * every replica without state: a request carrying the cookie and changing something must carry
 * `X-CSRF-Token: <csrfTokenOf(session)>`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** The name of the session cookie. */
export const SESSION_COOKIE = 'lading_session';

/** The header that carries the session's CSRF token on requests that change something. */
export const CSRF_HEADER = 'x-csrf-token';

/** How a session secret starts (so it is told from a password or another token at a glance, e.g. in a leak scan). */
export const SESSION_PREFIX = 'lses_';

const SESSION_VALUE = /^lses_[A-Za-z0-9_-]{16,128}$/;

/** The session secret of a request's `Cookie` header, or null when it carries none (or a malformed one). */
export function sessionOf(headers: IncomingHttpHeaders): string | null {
  const cookie = headers.cookie;
  if (!cookie || !cookie.includes(SESSION_COOKIE)) return null;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return SESSION_VALUE.test(value) ? value : null;
  }
  return null;
}

/** The CSRF token of a session: base64url of SHA-256 over a label and the secret. */
export function csrfTokenOf(session: string): string {
  return createHash('sha256').update('lading console csrf\0').update(session).digest('base64url');
}

/** Whether a request's `X-CSRF-Token` is its session's (compared in constant time). */
export function csrfHolds(headers: IncomingHttpHeaders, session: string): boolean {
  const sent = headers[CSRF_HEADER];
  if (typeof sent !== 'string') return false;
  const expected = Buffer.from(csrfTokenOf(session));
  const given = Buffer.from(sent);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** What the session cookie's `Set-Cookie` says: HttpOnly, SameSite=Strict, Path=/, Secure unless turned off. */
export function sessionCookie(value: string, options: { maxAgeSeconds: number; secure: boolean }): string {
  return `${SESSION_COOKIE}=${value}; Max-Age=${options.maxAgeSeconds}; Path=/; HttpOnly; SameSite=Strict${options.secure ? '; Secure' : ''}`;
}

/** The `Set-Cookie` that removes the session cookie. */
export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}
