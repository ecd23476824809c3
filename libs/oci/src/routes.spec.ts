import { OciError } from './errors';
import { ROUTES, RouteKey, RouteName, assertMethodAllowed, matchRoute } from './routes';

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;
const UUID = '0190f1c2-7b3a-7c00-8000-000000000001';

function matched(path: string): { name: RouteName; repository: string; param: string } | null {
  const m = matchRoute(path);
  return m && { name: m.route.name, repository: m.repository, param: m.param };
}

function thrownBy(fn: () => unknown): OciError {
  try {
    fn();
  } catch (err) {
    return err as OciError;
  }
  throw new Error('expected a throw');
}

describe('matchRoute', () => {
  it.each<[string, RouteName, string, string]>([
    ['/v2/', 'base', '', ''],
    ['/v2', 'base', '', ''],
    ['/v2/_catalog', 'catalog', '', ''],
    ['/v2/team/app/tags/list', 'tags', 'team/app', ''],
    ['/v2/team/app/manifests/latest', 'manifest', 'team/app', 'latest'],
    [`/v2/team/app/manifests/${DIGEST}`, 'manifest', 'team/app', DIGEST],
    ['/v2/team/app/blobs/uploads/', 'uploadStart', 'team/app', ''],
    ['/v2/team/app/blobs/uploads', 'uploadStart', 'team/app', ''],
    [`/v2/team/app/blobs/uploads/${UUID}`, 'upload', 'team/app', UUID],
    [`/v2/team/app/blobs/${DIGEST}`, 'blob', 'team/app', DIGEST],
    [`/v2/team/app/referrers/${DIGEST}`, 'referrers', 'team/app', DIGEST],
  ])('matches %s as the %s route', (path, name, repository, param) => {
    expect(matched(path)).toEqual({ name, repository, param });
  });

  it('captures the repository of the console tags route and refuses a name the grammar does not allow', () => {
    expect(matched('/api/v1/repositories/team/app/tags')).toEqual({ name: 'consoleTags', repository: 'team/app', param: '' });
    expect(() => matchRoute('/api/v1/repositories/Team/../tags')).toThrow(OciError);
  });

  it('gives every route in the table a path that matches it', () => {
    const paths: Record<RouteName, string> = {
      base: '/v2/',
      catalog: '/v2/_catalog',
      tags: '/v2/r/tags/list',
      manifest: '/v2/r/manifests/t',
      uploadStart: '/v2/r/blobs/uploads/',
      upload: `/v2/r/blobs/uploads/${UUID}`,
      blob: `/v2/r/blobs/${DIGEST}`,
      referrers: `/v2/r/referrers/${DIGEST}`,
      token: '/token',
      jwks: '/.well-known/jwks.json',
      admin: '/admin/v1/users',
      dockerPing: '/v1/_ping',
      search: '/v1/search',
      searchApi: '/api/v1/search',
      session: '/ui/api/session',
      oidcLogin: '/ui/api/oidc/login',
      oidcCallback: '/ui/api/oidc/callback',
      oidcCli: '/ui/api/oidc/cli',
      consoleRepositories: '/api/v1/repositories',
      consoleTags: '/api/v1/repositories/team/app/tags',
      events: '/api/v1/events',
    };
    expect(ROUTES.map((r) => r.name).sort()).toEqual(Object.keys(paths).sort());
    for (const route of ROUTES) expect(matchRoute(paths[route.name])?.route.name).toBe(route.name);
  });

  it.each<[string, RouteName, string, string]>([
    [`/v2/foo/blobs/bar/blobs/${DIGEST}`, 'blob', 'foo/blobs/bar', DIGEST],
    ['/v2/foo/blobs/blobs/uploads/', 'uploadStart', 'foo/blobs', ''],
    [`/v2/foo/blobs/uploads/blobs/uploads/${UUID}`, 'upload', 'foo/blobs/uploads', UUID],
    ['/v2/foo/manifests/manifests/latest', 'manifest', 'foo/manifests', 'latest'],
    ['/v2/manifests/manifests/v1', 'manifest', 'manifests', 'v1'],
    ['/v2/foo/tags/tags/list', 'tags', 'foo/tags', ''],
    ['/v2/tags/list/tags/list', 'tags', 'tags/list', ''],
    ['/v2/foo/manifests/tags/list', 'tags', 'foo/manifests', ''],
    [`/v2/referrers/referrers/${DIGEST}`, 'referrers', 'referrers', DIGEST],
    ['/v2/blobs/manifests/latest', 'manifest', 'blobs', 'latest'],
  ])('matches %s, whose repository name has route words as components, as %s of %s', (path, name, repository, param) => {
    expect(matched(path)).toEqual({ name, repository, param });
  });

  it.each([
    ['uppercase', '/v2/Team/app/manifests/latest'],
    ['an encoded slash', '/v2/team%2Fapp/manifests/latest'],
    ['an empty component', '/v2/team//app/tags/list'],
    ['a trailing separator', `/v2/team/app-/blobs/${DIGEST}`],
    ['a name over 255 characters', `/v2/${'a'.repeat(256)}/blobs/uploads/`],
    ['two dots', '/v2/team/../app/manifests/latest'],
  ])('throws NAME_INVALID for a route-shaped path whose name has %s', (_what, path) => {
    const err = thrownBy(() => matchRoute(path));
    expect(err).toBeInstanceOf(OciError);
    expect(err.code).toBe('NAME_INVALID');
    expect(err.status).toBe(400);
  });

  it.each([
    '/',
    '/healthz',
    '/v1/team/app/manifests/latest',
    '/v2/team/app',
    '/v2/team/app/',
    '/v2/team/app/manifests/',
    '/v2/team/app/manifests/a/b',
    '/v2/team/app/blobs/',
    `/v2/team/app/blobs/uploads/${UUID}/`,
    '/v2/team/app/tags/list/',
    '/v2/team/app/tags',
    '/v2/team/app/referrers/',
    '/v2/_catalog/',
    '/v2x/team/app/tags/list',
    '/prefix/v2/team/app/tags/list',
  ])('returns null for %s, which is not an API path', (path) => {
    expect(matchRoute(path)).toBeNull();
  });
});

describe('assertMethodAllowed', () => {
  it('lets a method the route accepts through', () => {
    const match = matchRoute('/v2/team/app/manifests/latest')!;
    for (const method of ['GET', 'HEAD', 'PUT', 'DELETE']) expect(() => assertMethodAllowed(match, method)).not.toThrow();
  });

  it('answers any other method with UNSUPPORTED 405 and an Allow header listing the route methods', () => {
    const err = thrownBy(() => assertMethodAllowed(matchRoute(`/v2/team/app/blobs/${DIGEST}`)!, 'PUT'));
    expect(err).toBeInstanceOf(OciError);
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.status).toBe(405);
    expect(err.headers).toEqual({ Allow: 'GET, HEAD, DELETE' });
  });

  it('refuses GET on the upload-start route, which only takes POST', () => {
    const err = thrownBy(() => assertMethodAllowed(matchRoute('/v2/team/app/blobs/uploads/')!, 'GET'));
    expect(err.status).toBe(405);
    expect(err.headers.Allow).toBe('POST');
  });

  it('compares methods exactly, so a lowercase method is not allowed', () => {
    expect(() => assertMethodAllowed(matchRoute('/v2/')!, 'get')).toThrow(OciError);
  });
});

describe('RouteKey', () => {
  it('is exactly each route with each method the table lets it take', () => {
    // A Record over the type: tsc fails on a key the type lacks, and on one it has that is missing here.
    const every: Record<RouteKey, true> = {
      'base GET': true,
      'base HEAD': true,
      'catalog GET': true,
      'catalog HEAD': true,
      'tags GET': true,
      'tags HEAD': true,
      'manifest GET': true,
      'manifest HEAD': true,
      'manifest PUT': true,
      'manifest DELETE': true,
      'uploadStart POST': true,
      'upload GET': true,
      'upload HEAD': true,
      'upload PATCH': true,
      'upload PUT': true,
      'upload DELETE': true,
      'blob GET': true,
      'blob HEAD': true,
      'blob DELETE': true,
      'referrers GET': true,
      'referrers HEAD': true,
      'token GET': true,
      'token POST': true,
      'jwks GET': true,
      'jwks HEAD': true,
      'admin GET': true,
      'admin POST': true,
      'admin PUT': true,
      'admin PATCH': true,
      'admin DELETE': true,
      'dockerPing GET': true,
      'dockerPing HEAD': true,
      'search GET': true,
      'search HEAD': true,
      'searchApi GET': true,
      'searchApi HEAD': true,
      'session GET': true,
      'session POST': true,
      'session DELETE': true,
      'oidcLogin GET': true,
      'oidcCallback GET': true,
      'oidcCli GET': true,
      'consoleRepositories GET': true,
      'consoleRepositories HEAD': true,
      'consoleTags GET': true,
      'consoleTags HEAD': true,
      'events GET': true,
    };
    expect(Object.keys(every).sort()).toEqual(ROUTES.flatMap((r) => r.methods.map((m) => `${r.name} ${m}`)).sort());
  });

  it('refuses, at compile time, a misspelt route, a method the route does not take, and another owner\'s route', () => {
    // @ts-expect-error a misspelt route name
    const misspelt: RouteKey = 'manifset PUT';
    // @ts-expect-error the blob route takes no PUT
    const wrongMethod: RouteKey = 'blob PUT';
    // @ts-expect-error the manifest route is the manifest service's
    const notOwned: RouteKey<'blob'> = 'manifest GET';
    const owned: RouteKey<'blob'> = 'upload PATCH';
    expect([misspelt, wrongMethod, notOwned, owned]).toHaveLength(4);
  });
});
