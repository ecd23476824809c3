import { href, parseRoute } from './router';

describe('the console routes', () => {
  it('reads a repository name with slashes, and what follows its "-" component', () => {
    expect(parseRoute('/ui/repositories/team/sub/app')).toEqual({ page: 'repository', name: 'team/sub/app' });
    expect(parseRoute('/ui/repositories/team/app/-/manifests/v1.2')).toEqual({ page: 'image', name: 'team/app', reference: 'v1.2' });
    expect(parseRoute('/ui/repositories/team/app/-/manifests/sha256%3Aabc')).toEqual({ page: 'image', name: 'team/app', reference: 'sha256:abc' });
    expect(parseRoute('/ui/repositories/a/-/blobs/sha256%3Aabc', '?mediaType=application%2Fjson')).toEqual({ page: 'blob', name: 'a', digest: 'sha256:abc', mediaType: 'application/json' });
  });

  it('makes links that parse back to the same page', () => {
    expect(parseRoute(href.image('team/app', 'sha256:abc'))).toEqual({ page: 'image', name: 'team/app', reference: 'sha256:abc' });
    expect(parseRoute(href.repository('x/y'))).toEqual({ page: 'repository', name: 'x/y' });
    expect(parseRoute(href.admin('robots'))).toEqual({ page: 'admin', section: 'robots' });
    expect(parseRoute(href.feed())).toEqual({ page: 'feed' });
  });

  it('names no page for an unknown path, an unknown admin section or a malformed image path', () => {
    expect(parseRoute('/ui/admin/secrets').page).toBe('not-found');
    expect(parseRoute('/ui/repositories/a/-/manifests').page).toBe('not-found');
    expect(parseRoute('/elsewhere').page).toBe('not-found');
  });
});
