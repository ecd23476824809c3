/** How the console writes sizes, times and digests for people. */

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** A size in bytes as people read it: 1.4 MB (powers of 1000, as registries and Docker show sizes). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

/** A timestamp as a short UTC date and time (2026-12-07 15:13 UTC); "never" when there is none. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return 'never';
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A digest shortened for a table cell (sha256:1234567890ab); the full digest goes in the title and copy. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return colon < 0 ? digest.slice(0, 12) : digest.slice(0, colon + 13);
}
