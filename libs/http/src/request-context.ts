/**
 * What the event records need to know about the request that caused a change: who made it (the principal the
 * gateway verified) and from where (the client's address after trusted proxies).
 *
 * Only the gateway says who the caller is. It strips both principal headers from every client request at admission,
 * and its authorization step sets the principal header from a verified token. A service believes that header when:
 * - the gateway admitted this very request object (the embedded mode: the services are mounted in its process), or
 * - the request came over HTTP with the gateway's proof, an HMAC of the request id and the principal under the
 *   secret the gateway and the services share (`upstreams.secret`, the distributed mode).
 * Anything else (a client that reaches a service directly and names itself, or no shared secret) is anonymous.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import { identityOfSubject } from '@lading/access';
import type { LadingConfig } from '@lading/config';
import type { EventActor, EventContext, EventRequest } from '@lading/events';
import { currentTraceparent } from '@lading/telemetry';

/** The request id header: set by the gateway, kept by the services behind it. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** The header the gateway passes the verified token subject in (stripped from client requests). */
export const PRINCIPAL_HEADER = 'x-lading-principal';

/** The gateway's proof of the principal header over HTTP (stripped from client requests); see `principalProof`. */
export const PRINCIPAL_PROOF_HEADER = 'x-lading-principal-proof';

/**
 * The header the gateway passes the verified token's groups in (the identity provider's, as of the sign-in; a
 * URI-encoded JSON array), covered by the principal's proof and stripped from client requests.
 */
export const PRINCIPAL_GROUPS_HEADER = 'x-lading-principal-groups';

/**
 * The header a service calling another on an admin's behalf names the admin in (the auth service asking the manifest
 * service to delete a repository), with `ADMIN_CALL_PROOF_HEADER`; stripped from client requests at the gateway.
 */
export const ADMIN_CALL_HEADER = 'x-lading-admin';

/** The calling service's proof of `ADMIN_CALL_HEADER`; see `adminCallProof`. */
export const ADMIN_CALL_PROOF_HEADER = 'x-lading-admin-proof';

/**
 * Sent by a gateway on a blob GET it can fetch from the object store itself: a blob service that does not redirect
 * clients (`storage.redirect` off) answers such a full GET with a 307 to a presigned URL that carries this header too,
 * and the gateway streams the object to the client, its bytes crossing one process fewer. Set only by the gateway.
 */
export const OBJECT_FETCH_HEADER = 'x-lading-object-fetch';

/**
 * How many clients' pulls one manifest read stands for: the gateway answers concurrent reads of one manifest with a
 * single read of the manifest service (services/gateway/src/manifest-reads.ts) and tells the service how many it
 * answers, for the pull audit (`pullsOf`); `0` for a read that counts no pull. Stripped from client requests.
 */
export const PULLS_HEADER = 'x-lading-pulls';

/** The most pulls one read may stand for (a larger or malformed header counts as one). */
const MAX_PULLS_PER_READ = 100_000;

/** The pulls a manifest read stands for: its `PULLS_HEADER` (set only by the gateway), 1 without one. */
export function pullsOf(req: IncomingMessage): number {
  const value = req.headers[PULLS_HEADER];
  if (value === undefined) return 1;
  const count = typeof value === 'string' && /^\d{1,6}$/.test(value) ? Number(value) : NaN;
  return count >= 0 && count <= MAX_PULLS_PER_READ ? count : 1;
}

/** Marks a request object the gateway admitted in this process. */
const ADMITTED = Symbol('lading.admittedByGateway');

/** The parts of the configuration a request's context depends on. */
export type RequestContextConfig = Pick<LadingConfig, 'http' | 'upstreams'>;

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

/**
 * Admits a client request at the gateway: drops any principal header or proof the client sent, and marks the
 * request object so that services in the same process believe the principal the gateway's authorization sets later.
 */
export function admitPrincipal(req: IncomingMessage): void {
  if (req.headers[PRINCIPAL_HEADER] !== undefined) delete req.headers[PRINCIPAL_HEADER];
  if (req.headers[PRINCIPAL_PROOF_HEADER] !== undefined) delete req.headers[PRINCIPAL_PROOF_HEADER];
  if (req.headers[PRINCIPAL_GROUPS_HEADER] !== undefined) delete req.headers[PRINCIPAL_GROUPS_HEADER];
  if (req.headers[ADMIN_CALL_HEADER] !== undefined) delete req.headers[ADMIN_CALL_HEADER];
  if (req.headers[ADMIN_CALL_PROOF_HEADER] !== undefined) delete req.headers[ADMIN_CALL_PROOF_HEADER];
  if (req.headers[PULLS_HEADER] !== undefined) delete req.headers[PULLS_HEADER];
  (req as IncomingMessage & { [ADMITTED]?: true })[ADMITTED] = true;
}

/**
 * The gateway's proof that it verified `principal` (and its `groups` header, when it has one) for the request
 * `requestId` (HMAC-SHA256 under `secret`).
 */
export function principalProof(secret: string, requestId: string, principal: string, groups = ''): string {
  return createHmac('sha256', secret).update(`lading-principal\n${requestId}\n${principal}${groups ? `\n${groups}` : ''}`).digest('base64url');
}

function proofHolds(secret: string, requestId: string, principal: string, proof: string, groups: string): boolean {
  const expected = Buffer.from(principalProof(secret, requestId, principal, groups));
  const given = Buffer.from(proof);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * The token subject the gateway verified for this request ('' for anonymous): believed only in the gateway's own
 * process or with its proof (see the top of this file).
 */
export function principalOf(req: IncomingMessage, secret: string | undefined): string {
  const principal = header(req, PRINCIPAL_HEADER);
  if (!principal) return '';
  if ((req as IncomingMessage & { [ADMITTED]?: true })[ADMITTED]) return principal;
  const proof = header(req, PRINCIPAL_PROOF_HEADER);
  const requestId = header(req, REQUEST_ID_HEADER);
  if (!secret || !proof || !requestId) return '';
  return proofHolds(secret, requestId, principal, proof, header(req, PRINCIPAL_GROUPS_HEADER) ?? '') ? principal : '';
}

/**
 * A service's proof that the admin `admin` asked for `method path` (the path with its query) in the request
 * `requestId` (HMAC-SHA256 under `upstreams.secret`). Bound to the method and path, so that it cannot be replayed onto
 * another call, and distinct from the gateway's principal proof, so that no proof the gateway makes for a client's
 * request stands for an admin call.
 */
export function adminCallProof(secret: string, requestId: string, method: string, path: string, admin: string): string {
  return createHmac('sha256', secret).update(`lading-admin-call\n${requestId}\n${method} ${path}\n${admin}`).digest('base64url');
}

/**
 * The admin a service-to-service admin call was made for ('' when the call carries no valid proof, or there is no
 * shared secret): see `adminCallProof`. `path` is the request's path with its query, as the caller sent it.
 */
export function adminOfCall(req: IncomingMessage, path: string, secret: string | undefined): string {
  const admin = header(req, ADMIN_CALL_HEADER);
  const proof = header(req, ADMIN_CALL_PROOF_HEADER);
  const requestId = header(req, REQUEST_ID_HEADER);
  if (!admin || !proof || !requestId || !secret) return '';
  const expected = Buffer.from(adminCallProof(secret, requestId, req.method ?? '', path, admin));
  const given = Buffer.from(proof);
  return given.length === expected.length && timingSafeEqual(given, expected) ? admin : '';
}

/** The groups header's value for `groups` (none for an empty list). */
export function principalGroupsHeader(groups: readonly string[]): string | undefined {
  return groups.length ? encodeURIComponent(JSON.stringify(groups)) : undefined;
}

/**
 * The groups the gateway verified with the principal of this request (its token's `groups`), believed only as the
 * principal is (`principalOf`); empty when there are none or the header is not a list of names.
 */
export function principalGroupsOf(req: IncomingMessage, secret: string | undefined): string[] {
  const raw = header(req, PRINCIPAL_GROUPS_HEADER);
  if (!raw || !principalOf(req, secret)) return [];
  try {
    const groups: unknown = JSON.parse(decodeURIComponent(raw));
    return Array.isArray(groups) && groups.every((g) => typeof g === 'string') ? (groups as string[]) : [];
  } catch {
    return [];
  }
}

/** Who caused a change, from the verified token subject: a user, a robot (by its own name) or anonymous. */
export function actorOf(principal: string): EventActor {
  return identityOfSubject(principal);
}

/** Builds the event context of a request: its verified principal, client address, id and trace. */
export function requestContext(req: Request, config: RequestContextConfig): EventContext {
  return {
    actor: actorOf(principalOf(req, config.upstreams.secret)),
    request: {
      id: header(req, REQUEST_ID_HEADER) ?? randomUUID(),
      addr: clientAddress(req, config.http.trustedProxies),
      method: req.method as EventRequest['method'], // only the write routes build events, and they use these methods
      useragent: header(req, 'user-agent') ?? '',
    },
    // The service's own span (so the outbox row, and every consumer's span, hang under this request's work); the
    // client's header when no span is active (telemetry not started).
    traceparent: currentTraceparent() ?? header(req, 'traceparent'),
  };
}
