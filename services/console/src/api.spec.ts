/**
 * @jest-environment jsdom
 */
import { ApiError, lastOfNext, queryString, repositoryPath } from './api';
import { SIGNED_IN, fakeServer } from '../test/fake-server';

describe('the console API client', () => {
  it("sends the session's CSRF token on every request that changes something, and never on reads", async () => {
    const server = fakeServer(SIGNED_IN, { 'GET /api/v1/repositories': { json: { repositories: [] } }, 'DELETE /v2/a/manifests/v1': { status: 202 } });
    server.api.setCsrf('token-1');
    await server.api.json('/api/v1/repositories');
    await server.api.request('/v2/a/manifests/v1', { method: 'DELETE' });
    expect(server.sent('GET')[0].headers['X-CSRF-Token']).toBeUndefined();
    expect(server.sent('DELETE')[0].headers['X-CSRF-Token']).toBe('token-1');
  });

  it("turns the OCI error envelope into an error carrying the server's message and status", async () => {
    const server = fakeServer(SIGNED_IN, { 'GET /v2/a/manifests/x': { status: 403, json: { errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] } } });
    const error = await server.api.json('/v2/a/manifests/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).message).toBe('requested access to the resource is denied');
    expect((error as ApiError).refused).toBe(true);
  });

  it('names the status when an error has no OCI body', async () => {
    const server = fakeServer(SIGNED_IN, { 'GET /x': { status: 502, text: 'bad gateway' } });
    await expect(server.api.json('/x')).rejects.toThrow(/502/);
  });

  it('writes query strings without empty parameters, repeating array values', () => {
    expect(queryString({ q: 'alp', n: 25, namespace: '', label: ['a=1', 'b=2'], last: null })).toBe('?q=alp&n=25&label=a%3D1&label=b%3D2');
    expect(queryString({ q: '' })).toBe('');
  });

  it('keeps the slashes of a repository name in paths and encodes the rest', () => {
    expect(repositoryPath('team/app x')).toBe('team/app%20x');
  });

  it("reads the next page's start from a bare name or from a link", () => {
    expect(lastOfNext('team/app')).toBe('team/app');
    expect(lastOfNext('/api/v1/repositories?n=25&last=team%2Fapp')).toBe('team/app');
  });
});
