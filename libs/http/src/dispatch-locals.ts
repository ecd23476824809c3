/** What the gateway leaves on a response it dispatches, for the handlers after it (bare node responses or express's). */
import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { RouteMatch } from '@lading/oci';

/** Locals the gateway leaves on a response it dispatches (express's `res.locals`, or set on a bare response). */
export interface DispatchLocals {
  route?: RouteMatch;
  /**
   * Headers the gateway adds to every answer of a fast-path request (the API version, the request id), written
   * together with the answer's own by `writeHead` instead of one `setHeader` each, which would make node merge them
   * one by one into the answer's headers.
   */
  head?: string[];
}

/** The gateway's headers for a response as name, value, name, value... (see `DispatchLocals.head`), if it left any. */
export function headOf(res: ServerResponse): readonly string[] | undefined {
  return (res as ServerResponse & { locals?: DispatchLocals }).locals?.head;
}

/** Writes the status and headers of a fast-path answer, the gateway's own headers (`head`) included. */
export function writeHead(res: ServerResponse, status: number, headers: OutgoingHttpHeaders): void {
  const head = headOf(res);
  if (!head) {
    res.writeHead(status, headers);
    return;
  }
  // A flat list, as node's raw headers are: cheaper to build than a merged object.
  const all: OutgoingHttpHeader[] = head.slice();
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) all.push(name, value);
  }
  res.writeHead(status, all as string[]);
}

/** The locals of a response, bare or express. */
export function localsOf(res: ServerResponse): DispatchLocals {
  const holder = res as ServerResponse & { locals?: DispatchLocals };
  holder.locals ??= Object.create(null) as DispatchLocals;
  return holder.locals;
}

/** True when an If-None-Match header names `etag` (or is `*`). */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header === etag) return true;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === etag;
  });
}
