/**
 * What text the registry can store. JSON and URLs can carry U+0000 and unpaired UTF-16 surrogates, but a Postgres
 * `text` or `jsonb` value cannot hold U+0000 (the query fails) and an unpaired surrogate has no UTF-8 encoding (the
 * driver silently replaces it, so what is stored is not what was sent). Input that reaches the database is checked
 * with this rule at the door and refused with a 400, instead of failing (or being altered) inside a query.
 */

/** U+0000, or a surrogate that is not half of a pair (in `u` mode a well-formed pair is one code point). */
const UNSTORABLE = /[\0\p{Cs}]/u;

/** True when `text` holds neither U+0000 nor an unpaired surrogate. */
export function isStorableText(text: string): boolean {
  return !UNSTORABLE.test(text);
}

/**
 * The path (`annotations.a`, `layers[0].urls[1]`) of the first string in a parsed JSON value, key or value, that is
 * not storable text; null when every string is. `depth` bounds the walk (callers bound the document's nesting).
 */
export function findUnstorableText(value: unknown, where = '', depth = 64): string | null {
  if (typeof value === 'string') return isStorableText(value) ? null : where || '(value)';
  if (depth <= 0 || typeof value !== 'object' || value === null) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorableText(value[i], `${where}[${i}]`, depth - 1);
      if (found !== null) return found;
    }
    return null;
  }
  for (const [key, child] of Object.entries(value)) {
    const path = where ? `${where}.${printable(key)}` : printable(key);
    if (!isStorableText(key)) return path;
    const found = findUnstorableText(child, path, depth - 1);
    if (found !== null) return found;
  }
  return null;
}

/** A key as an error message may quote it: unstorable characters shown as escapes, at most 100 characters. */
function printable(key: string): string {
  return key.slice(0, 100).replace(/[\0\p{Cs}]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
