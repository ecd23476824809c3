/** What the event records need to know about the request that caused a change. */
import type { Request } from 'express';
import { randomUUID } from 'node:crypto';
import type { EventContext } from '@lading/events';

/** The request id header: set by the gateway, kept by the services behind it. */
export const REQUEST_ID_HEADER = 'x-request-id';

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Builds the event context of a request (anonymous until the auth issue adds principals). */
export function requestContext(req: Request): EventContext {
  return {
    actor: { name: null, type: 'anonymous' },
    request: {
      id: header(req, REQUEST_ID_HEADER) ?? randomUUID(),
      addr: req.socket.remoteAddress ?? '',
      method: req.method,
      useragent: header(req, 'user-agent') ?? '',
    },
    traceparent: header(req, 'traceparent'),
  };
}
