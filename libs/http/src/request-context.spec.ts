import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import {
  PRINCIPAL_GROUPS_HEADER,
  PRINCIPAL_HEADER,
  PRINCIPAL_PROOF_HEADER,
  PULLS_HEADER,
  REQUEST_ID_HEADER,
  RequestContextConfig,
  actorOf,
  admitPrincipal,
  clientAddress,
  principalGroupsHeader,
  principalGroupsOf,
  principalOf,
  principalProof,
  pullsOf,
  requestContext,
} from './request-context';

function request(remoteAddress: string, forwardedFor?: string): Request {
  return { socket: { remoteAddress }, headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {} } as unknown as Request;
}

describe('clientAddress', () => {
  it('is the socket peer when no proxy is trusted, whatever X-Forwarded-For claims', () => {
    expect(clientAddress(request('10.0.0.9', '1.2.3.4'), 0)).toBe('10.0.0.9');
  });

  it('is the entry as many hops from the right as there are trusted proxies', () => {
    // client 1.2.3.4 -> nginx (127.0.0.2) -> gateway (127.0.0.3) -> this process
    expect(clientAddress(request('127.0.0.3', '1.2.3.4, 127.0.0.2'), 2)).toBe('1.2.3.4');
    expect(clientAddress(request('127.0.0.2', '1.2.3.4'), 1)).toBe('1.2.3.4');
  });

  it('cannot be spoofed by a client that prepends its own X-Forwarded-For entries', () => {
    expect(clientAddress(request('127.0.0.3', '6.6.6.6, 1.2.3.4, 127.0.0.2'), 2)).toBe('1.2.3.4');
  });

  it('falls back to the leftmost entry when the chain is shorter than the trusted hops', () => {
    expect(clientAddress(request('127.0.0.3'), 2)).toBe('127.0.0.3');
  });
});

describe('the principal a service believes', () => {
  const SECRET = 's'.repeat(32);
  function overHttp(headers: Record<string, string>): IncomingMessage {
    return { socket: { remoteAddress: '10.0.0.9' }, headers } as unknown as IncomingMessage;
  }
  function admitted(headers: Record<string, string>): IncomingMessage {
    const req = overHttp(headers);
    admitPrincipal(req);
    return req;
  }

  it('is the principal the gateway set on a request it admitted in the same process', () => {
    const req = admitted({});
    req.headers[PRINCIPAL_HEADER] = 'alice';
    expect(principalOf(req, undefined)).toBe('alice');
  });

  it('drops a pull count the client sent when the gateway admits the request (one pull then)', () => {
    const req = admitted({ [PULLS_HEADER]: '5000' });
    expect(req.headers[PULLS_HEADER]).toBeUndefined();
    expect(pullsOf(req)).toBe(1);
  });

  it('counts the pulls a read from the gateway stands for: its header, 1 without one or when malformed', () => {
    expect(pullsOf(overHttp({ [PULLS_HEADER]: '17' }))).toBe(17);
    expect(pullsOf(overHttp({ [PULLS_HEADER]: '0' }))).toBe(0);
    expect(pullsOf(overHttp({}))).toBe(1);
    for (const bad of ['-3', '1e3', 'many', '9999999']) expect(pullsOf(overHttp({ [PULLS_HEADER]: bad }))).toBe(1);
  });

  it('drops a principal and a proof the client sent when the gateway admits the request', () => {
    const req = admitted({ [PRINCIPAL_HEADER]: 'admin', [PRINCIPAL_PROOF_HEADER]: 'forged', [REQUEST_ID_HEADER]: 'r1' });
    expect(req.headers[PRINCIPAL_HEADER]).toBeUndefined();
    expect(req.headers[PRINCIPAL_PROOF_HEADER]).toBeUndefined();
    expect(principalOf(req, SECRET)).toBe('');
  });

  it('over HTTP, is the principal only with the gateway proof for this request id', () => {
    const proof = principalProof(SECRET, 'r1', 'robot$ci');
    expect(principalOf(overHttp({ [PRINCIPAL_HEADER]: 'robot$ci', [PRINCIPAL_PROOF_HEADER]: proof, [REQUEST_ID_HEADER]: 'r1' }), SECRET)).toBe('robot$ci');
    // A client that reaches the service directly and names itself, or replays a proof with another principal or id.
    expect(principalOf(overHttp({ [PRINCIPAL_HEADER]: 'admin', [REQUEST_ID_HEADER]: 'r1' }), SECRET)).toBe('');
    expect(principalOf(overHttp({ [PRINCIPAL_HEADER]: 'admin', [PRINCIPAL_PROOF_HEADER]: proof, [REQUEST_ID_HEADER]: 'r1' }), SECRET)).toBe('');
    expect(principalOf(overHttp({ [PRINCIPAL_HEADER]: 'robot$ci', [PRINCIPAL_PROOF_HEADER]: proof, [REQUEST_ID_HEADER]: 'r2' }), SECRET)).toBe('');
    expect(principalOf(overHttp({ [PRINCIPAL_HEADER]: 'robot$ci', [PRINCIPAL_PROOF_HEADER]: principalProof('x'.repeat(32), 'r1', 'robot$ci'), [REQUEST_ID_HEADER]: 'r1' }), SECRET)).toBe('');
  });

  it('drops groups the client sent when the gateway admits the request, and believes those its authorization set', () => {
    const req = admitted({ [PRINCIPAL_GROUPS_HEADER]: principalGroupsHeader(['admins'])! });
    expect(req.headers[PRINCIPAL_GROUPS_HEADER]).toBeUndefined();
    req.headers[PRINCIPAL_HEADER] = 'alice';
    req.headers[PRINCIPAL_GROUPS_HEADER] = principalGroupsHeader(['platform', 'dev ops'])!;
    expect(principalGroupsOf(req, undefined)).toEqual(['platform', 'dev ops']);
  });

  it('over HTTP, believes groups only under the proof that covers them, and never without a principal', () => {
    const groups = principalGroupsHeader(['platform'])!;
    const proof = principalProof(SECRET, 'r1', 'alice', groups);
    const headers = { [PRINCIPAL_HEADER]: 'alice', [PRINCIPAL_PROOF_HEADER]: proof, [REQUEST_ID_HEADER]: 'r1', [PRINCIPAL_GROUPS_HEADER]: groups };
    expect(principalGroupsOf(overHttp(headers), SECRET)).toEqual(['platform']);
    // Groups added or changed on the way void the proof: neither the principal nor the groups are believed.
    const forged = { ...headers, [PRINCIPAL_GROUPS_HEADER]: principalGroupsHeader(['platform', 'admins'])! };
    expect(principalOf(overHttp(forged), SECRET)).toBe('');
    expect(principalGroupsOf(overHttp(forged), SECRET)).toEqual([]);
    const added = { ...headers, [PRINCIPAL_PROOF_HEADER]: principalProof(SECRET, 'r1', 'alice'), [PRINCIPAL_GROUPS_HEADER]: groups };
    expect(principalOf(overHttp(added), SECRET)).toBe('');
    expect(principalGroupsOf(overHttp({ [PRINCIPAL_GROUPS_HEADER]: groups }), SECRET)).toEqual([]);
    expect(principalGroupsOf(overHttp({ ...headers, [PRINCIPAL_GROUPS_HEADER]: '%7Bnot%20a%20list', [PRINCIPAL_PROOF_HEADER]: principalProof(SECRET, 'r1', 'alice', '%7Bnot%20a%20list') }), SECRET)).toEqual([]);
  });

  it('over HTTP without a shared secret, is nobody whatever the headers say', () => {
    const proof = principalProof(SECRET, 'r1', 'alice');
    expect(principalOf(overHttp({ [PRINCIPAL_HEADER]: 'alice', [PRINCIPAL_PROOF_HEADER]: proof, [REQUEST_ID_HEADER]: 'r1' }), undefined)).toBe('');
  });
});

describe('actorOf', () => {
  it('names users, robots by their own name, and nobody for an anonymous token', () => {
    expect(actorOf('alice')).toEqual({ type: 'user', name: 'alice' });
    expect(actorOf('robot$ci-bot')).toEqual({ type: 'robot', name: 'ci-bot' });
    expect(actorOf('')).toEqual({ type: 'anonymous', name: null });
  });
});

describe('requestContext', () => {
  it('records the client address after trusted proxies, not the proxy that connected', () => {
    const req = { method: 'PUT', socket: { remoteAddress: '127.0.0.3' }, headers: { 'x-forwarded-for': '6.6.6.6, 1.2.3.4, 127.0.0.2' } } as unknown as Request;
    const config = { http: { trustedProxies: 2 }, upstreams: {} } as RequestContextConfig;
    expect(requestContext(req, config).request?.addr).toBe('1.2.3.4');
  });
});
