import { ROUTES, RouteMatch, matchRoute } from '@lading/oci';
import type { Access } from './scopes';
import { acceptsAnonymous, requiredAccess } from './route-access';

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;
const UUID = '0190f1c2-7b3a-7c00-8000-000000000001';

function need(path: string, method: string): Access[] {
  const match = matchRoute(path) as RouteMatch;
  expect(match).not.toBeNull();
  expect(match.route.methods).toContain(method);
  return requiredAccess(match, method);
}

const pull = (name: string): Access[] => [{ type: 'repository', name, actions: ['pull'] }];
const push = (name: string): Access[] => [{ type: 'repository', name, actions: ['push'] }];
const del = (name: string): Access[] => [{ type: 'repository', name, actions: ['delete'] }];

describe('requiredAccess', () => {
  // The expected table is written out here, route by route and method by method, not derived from the code.
  it.each<[string, string, Access[]]>([
    ['/v2/', 'GET', []],
    ['/v2/', 'HEAD', []],
    ['/v2/_catalog', 'GET', [{ type: 'registry', name: 'catalog', actions: ['*'] }]],
    ['/v2/_catalog', 'HEAD', [{ type: 'registry', name: 'catalog', actions: ['*'] }]],
    ['/v2/team/app/tags/list', 'GET', pull('team/app')],
    ['/v2/team/app/tags/list', 'HEAD', pull('team/app')],
    ['/v2/team/app/manifests/v1', 'GET', pull('team/app')],
    ['/v2/team/app/manifests/v1', 'HEAD', pull('team/app')],
    [`/v2/team/app/manifests/${DIGEST}`, 'GET', pull('team/app')],
    ['/v2/team/app/manifests/v1', 'PUT', push('team/app')],
    [`/v2/team/app/manifests/${DIGEST}`, 'PUT', push('team/app')],
    ['/v2/team/app/manifests/v1', 'DELETE', del('team/app')],
    [`/v2/team/app/manifests/${DIGEST}`, 'DELETE', del('team/app')],
    [`/v2/team/app/blobs/${DIGEST}`, 'GET', pull('team/app')],
    [`/v2/team/app/blobs/${DIGEST}`, 'HEAD', pull('team/app')],
    [`/v2/team/app/blobs/${DIGEST}`, 'DELETE', del('team/app')],
    ['/v2/team/app/blobs/uploads/', 'POST', push('team/app')],
    [`/v2/team/app/blobs/uploads/${UUID}`, 'GET', push('team/app')],
    [`/v2/team/app/blobs/uploads/${UUID}`, 'HEAD', push('team/app')],
    [`/v2/team/app/blobs/uploads/${UUID}`, 'PATCH', push('team/app')],
    [`/v2/team/app/blobs/uploads/${UUID}`, 'PUT', push('team/app')],
    [`/v2/team/app/blobs/uploads/${UUID}`, 'DELETE', push('team/app')],
    [`/v2/team/app/referrers/${DIGEST}`, 'GET', pull('team/app')],
    [`/v2/team/app/referrers/${DIGEST}`, 'HEAD', pull('team/app')],
    ['/v2/a/b/c/manifests/v1', 'PUT', push('a/b/c')],
  ])('%s %s needs %j', (path, method, expected) => {
    expect(need(path, method)).toEqual(expected);
  });

  it('makes deleting its own action on every delete route, never implied by push or pull', () => {
    for (const route of ROUTES) {
      if (!route.methods.includes('DELETE') || !route.hasRepository) continue;
      const path = { manifest: `/v2/r/manifests/${DIGEST}`, blob: `/v2/r/blobs/${DIGEST}`, upload: `/v2/r/blobs/uploads/${UUID}` }[route.name as string];
      expect(path).toBeDefined();
      const actions = need(path as string, 'DELETE').flatMap((a) => a.actions);
      // Cancelling one's own upload session is part of pushing; deleting content is the delete action.
      expect(actions).toEqual(route.name === 'upload' ? ['push'] : ['delete']);
    }
  });

  it('names a repository action for every repository route and method, so no /v2 request is open to any token', () => {
    for (const route of ROUTES) {
      if (!route.hasRepository) continue;
      const path = {
        tags: '/v2/r/tags/list',
        manifest: '/v2/r/manifests/v1',
        uploadStart: '/v2/r/blobs/uploads/',
        upload: `/v2/r/blobs/uploads/${UUID}`,
        blob: `/v2/r/blobs/${DIGEST}`,
        referrers: `/v2/r/referrers/${DIGEST}`,
      }[route.name as string] as string;
      for (const method of route.methods) {
        const required = need(path, method);
        expect(required).toHaveLength(1);
        expect(required[0]).toMatchObject({ type: 'repository', name: 'r' });
        expect(required[0].actions).toHaveLength(1);
      }
    }
  });

  it('leaves the auth routes to the auth service (it authenticates them itself)', () => {
    expect(need('/token', 'GET')).toEqual([]);
    expect(need('/token', 'POST')).toEqual([]);
    expect(need('/.well-known/jwks.json', 'GET')).toEqual([]);
    expect(need('/admin/v1/users', 'POST')).toEqual([]);
    expect(need('/ui/api/session', 'POST')).toEqual([]);
  });
});

describe('acceptsAnonymous', () => {
  it('lets only Docker\'s ping, the searches and the console\'s listings and feed (which filter by their caller) be asked without a token', () => {
    const open = ROUTES.filter((route) => acceptsAnonymous({ route, repository: '', param: '' })).map((route) => route.name);
    expect(open.sort()).toEqual(['consoleRepositories', 'consoleTags', 'dockerPing', 'events', 'search', 'searchApi']);
    expect(need('/api/v1/repositories/team/app/tags', 'GET')).toEqual([]);
    expect(need('/api/v1/events', 'GET')).toEqual([]);
    expect(need('/v1/search', 'GET')).toEqual([]);
    expect(need('/api/v1/search', 'GET')).toEqual([]);
  });
});
