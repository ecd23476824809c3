/** Content negotiation for manifest GET: does the client's Accept header admit the stored media type? */

/** True when `accept` (absent, or a list of media ranges) admits `mediaType`. */
export function accepts(accept: string | undefined, mediaType: string): boolean {
  if (!accept || accept.trim() === '') return true;
  const [type] = mediaType.split('/');
  return accept
    .split(',')
    .map((range) => range.split(';')[0].trim().toLowerCase())
    .some((range) => range === '*/*' || range === mediaType.toLowerCase() || range === `${type}/*`);
}
