/**
 * What must never reach a log line: credentials in headers and fields (Authorization, cookies, tokens, passwords,
 * webhook secrets, S3 keys) and the secret parts of URLs (presigned `X-Amz-Signature`/`X-Amz-Credential` query
 * strings, `token=`/`password=` parameters, `user:password@` userinfo) and, wherever they appear in text, our own
 * secrets by their shape (personal access tokens, refresh tokens, robot and webhook secrets, JWTs, webhook
 * signatures). Keys are matched at any depth, by name.
 */

/** The value that replaces a secret. */
export const REDACTED = '[redacted]';

/** Field names (lowercase, any depth) whose values are secrets. */
export const SECRET_KEYS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-amz-security-token',
  'x-registry-auth',
  'password',
  'passwd',
  'newpassword',
  'token',
  'access_token',
  'accesstoken',
  'refresh_token',
  'refreshtoken',
  'id_token',
  'secret',
  'secretkey',
  'secret_key',
  'clientsecret',
  'bindpassword',
  'client_secret',
  'webhooksecret',
  'signingsecret',
  'privatekey',
  'private_key',
  'webhook-signature',
  'x-hub-signature',
  'x-hub-signature-256',
]);

/** Query parameters whose values are secrets (matched case-insensitively); `code` is an OAuth authorization code. */
const SECRET_QUERY = /([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|token|access_token|refresh_token|password|secret|code|subject_token)=)[^&#\s"']*/gi;
/** `scheme://user:password@host` userinfo. */
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s:@"']+:[^/\s@"']+@/gi;
/** `Bearer <token>` / `Basic <credentials>` wherever they appear in text, however short (not a challenge's `realm=`). */
const AUTH_SCHEME = /\b(Bearer|Basic)\s+(?!realm=)[A-Za-z0-9._~+/=-]+/g;
/** Our secrets by their prefixes: personal access tokens, refresh tokens, robot secrets, webhook secrets, console sessions. */
const PREFIXED_SECRET = /\b(lpat|lrt|lrs|whsec|lses)_[A-Za-z0-9_+/=-]+/g;
/** A JWT (header.claims.signature), whichever key signed it. */
const JWT = /\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
const MAYBE_SECRET = /[=@]|Bearer|Basic|lpat_|lrt_|lrs_|whsec_|lses_|eyJ/;

/** Removes secrets from a piece of text (URLs, messages). */
export function redactText(text: string): string {
  if (!MAYBE_SECRET.test(text)) return text;
  return text
    .replace(SECRET_QUERY, `$1${REDACTED}`)
    .replace(URL_USERINFO, `$1${REDACTED}@`)
    .replace(AUTH_SCHEME, `$1 ${REDACTED}`)
    .replace(PREFIXED_SECRET, `$1_${REDACTED}`)
    .replace(JWT, REDACTED);
}

const MAX_DEPTH = 6;

/**
 * A copy of `value` with secrets removed: fields named in SECRET_KEYS replaced, strings scrubbed. Objects that
 * need no change are returned as they are (no copy), so the common log line costs one walk.
 */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (Buffer.isBuffer(value) || value instanceof Date) return value;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((item) => {
      const next = redactValue(item, depth + 1);
      if (next !== item) changed = true;
      return next;
    });
    return changed ? out : value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const next = SECRET_KEYS.has(key.toLowerCase()) && item !== undefined && item !== null ? REDACTED : redactValue(item, depth + 1);
    if (next !== item) {
      copy ??= value instanceof Error ? { type: value.name, message: redactText(value.message) } : { ...(value as Record<string, unknown>) };
      copy[key] = next;
    }
  }
  return copy ?? value;
}
