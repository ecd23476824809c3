/** Parsing of HTTP `Range` (blob GET) and `Content-Range` (upload PATCH) headers. */
import type { ByteRange } from '@lading/storage';

/** The outcome of a Range header against a blob of a known size. */
export type RangeRequest = { kind: 'full' } | { kind: 'partial'; range: ByteRange } | { kind: 'unsatisfiable' };

/**
 * Interprets a `Range: bytes=…` header (RFC 9110). A missing or syntactically invalid header, or one with several
 * ranges, means the whole blob; a valid range past the end is unsatisfiable (416); an end past the size is clipped.
 */
export function parseRangeHeader(header: string | undefined, size: number): RangeRequest {
  if (!header) return { kind: 'full' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(size - suffix, 0), end: size - 1 } };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return { kind: 'unsatisfiable' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', range: { start, end } };
}

/** A `Content-Range: <start>-<end>` of an upload chunk; null when the header is absent, 'invalid' when malformed. */
export function parseContentRange(header: string | undefined): ByteRange | null | 'invalid' {
  if (header === undefined) return null;
  const m = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) return 'invalid';
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) return 'invalid';
  return { start, end };
}
