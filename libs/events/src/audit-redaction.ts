/**
 * The one redaction of the audit trail: what an admin change's before and after values keep. Every value under a
 * key that names a secret (passwords, secrets, tokens, credentials, keys, authorization) and every string that looks
 * like one of Lading's generated secrets is replaced by `REDACTED`, however deep; everything else is copied.
 */

/** What a secret is replaced by. */
export const REDACTED = '[redacted]';

/** Keys whose values are secrets, compared without case, `_` or `-`: `password`, `upstreamPassword`, `secret_hash`, `token`, `authorization`. */
const SECRET_KEY = /(password|passwd|secret|token|credential|authorization|apikey|privatekey|signingkey|hash|cookie|sealed)/;

/** The prefixes of Lading's generated secrets (personal access tokens, robot secrets, refresh tokens, webhook secrets). */
const SECRET_VALUE = /^(lpat_|lrs_|lrt_|whsec_)/;

/** The deepest nesting copied; deeper values are redacted (an admin body is small; a cycle or a bomb is not copied). */
const MAX_DEPTH = 16;

/** Whether a key names a secret. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key.toLowerCase().replace(/[-_]/g, ''));
}

/** A copy of `value` with every secret replaced by `REDACTED` (see the top of this file); dates become ISO strings. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (value === null || value === undefined) return value ?? null;
  if (typeof value === 'string') return SECRET_VALUE.test(value) ? REDACTED : value;
  if (typeof value !== 'object') return typeof value === 'bigint' ? String(value) : value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) copy[key] = isSecretKey(key) ? REDACTED : redactSecrets(item, depth + 1);
  return copy;
}
