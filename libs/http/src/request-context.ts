/** What the event records need to know about the request that caused a change. */
import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import { randomUUID } from 'node:crypto';
import type { EventContext } from '@lading/events';
import { currentTraceparent } from '@lading/telemetry';

/** The request id header: set by the gateway, kept by the services behind it. */
export const REQUEST_ID_HEADER = 'x-request-id';

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The client's address: the socket's peer, or with `trustedProxies` reverse proxies in front (each appending the
 * address it saw to X-Forwarded-For), the entry that many hops from the right.
 */
export function clientAddress(req: IncomingMessage, trustedProxies: number): string {
  const socketAddress = req.socket.remoteAddress ?? '';
  if (trustedProxies <= 0) return socketAddress;
  const forwarded = header(req, 'x-forwarded-for');
  const chain = [...(forwarded ? forwarded.split(',').map((a) => a.trim()).filter(Boolean) : []), socketAddress];
  return chain[Math.max(0, chain.length - 1 - trustedProxies)];
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
    // The service's own span (so the outbox row, and every consumer's span, hang under this request's work); the
    // client's header when no span is active (telemetry not started).
    traceparent: currentTraceparent() ?? header(req, 'traceparent'),
  };
}
