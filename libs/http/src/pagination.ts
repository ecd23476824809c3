/** The `n`/`last` pagination of tags/list and _catalog, and its `Link` header. */
import { OciError, errors, isStorableText } from '@lading/oci';

/** A validated page request. */
export interface PageRequest {
  /** How many entries to return (already clamped to the maximum page size). */
  limit: number;
  last: string | null;
}

function single(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  throw errors.paginationInvalid({ reason: 'parameter given more than once' });
}

/**
 * Parses `n` and `last`: `n` must be a non-negative integer; larger than `maxPageSize` is clamped. `last` is compared
 * with stored names, so it must be text Postgres can hold (no U+0000, no unpaired surrogate).
 */
export function parsePageRequest(query: Record<string, unknown>, maxPageSize: number): PageRequest {
  const n = single(query.n);
  const last = single(query.last) ?? null;
  let limit = maxPageSize;
  if (n !== undefined) {
    // Any non-negative integer, however long, is valid; larger than the maximum (even past 2^53) is clamped.
    if (!/^\d+$/.test(n)) throw errors.paginationInvalid({ n: n.slice(0, 100) });
    limit = Math.min(Number(n), maxPageSize);
  }
  if (last !== null && !isStorableText(last)) {
    throw new OciError('PAGINATION_NUMBER_INVALID', 'last must not contain U+0000 or unpaired UTF-16 surrogates');
  }
  return { limit, last: last === '' ? null : last };
}

/** The `Link` header pointing at the next page, RFC 5988 style as Distribution sends it. */
export function nextPageLink(path: string, limit: number, last: string): string {
  return `<${path}?n=${limit}&last=${encodeURIComponent(last)}>; rel="next"`;
}
