/**
 * A check at the door of APIs that store what they are sent: every percent-escape of the path and the query must
 * decode as UTF-8 (express would quietly turn `%FF` into U+FFFD, so the value compared or stored is not the one
 * sent), and no decoded value, nor any string of a JSON body, may hold what Postgres text cannot (see
 * `isStorableText`). Such a request is the client's mistake: a 400, never a failing query.
 */
import type { IncomingMessage } from 'node:http';
import { OciError, findUnstorableText, isStorableText } from '@lading/oci';

function refuse(message: string): OciError {
  return new OciError('UNSUPPORTED', message, undefined, { status: 400 });
}

/** Decodes one percent-encoded component strictly (`+` as a space when `form`); null when an escape is not UTF-8. */
function strictlyDecoded(component: string, form: boolean): string | null {
  try {
    return decodeURIComponent(form ? component.replace(/\+/g, ' ') : component);
  } catch {
    return null;
  }
}

/** Throws a 400 unless the request's path, query and parsed JSON body (if any) are text the registry can store. */
export function assertStorableInput(req: IncomingMessage & { body?: unknown }): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = strictlyDecoded(q < 0 ? url : url.slice(0, q), false);
  if (path === null || !isStorableText(path)) throw refuse('the path must be percent-encoded UTF-8 without U+0000');
  if (q >= 0) {
    for (const pair of url.slice(q + 1).split('&')) {
      const value = strictlyDecoded(pair, true);
      if (value === null || !isStorableText(value)) throw refuse('query parameters must be percent-encoded UTF-8 without U+0000');
    }
  }
  const field = findUnstorableText(req.body, 'body');
  if (field !== null) throw refuse(`${field} must not contain U+0000 or unpaired UTF-16 surrogates`);
}
