import type { Request } from 'express';
import { clientAddress } from './request-context';

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
