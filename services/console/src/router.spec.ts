import { href, pageKey, parseRoute } from './router';

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
    expect(parseRoute(href.admin('robots'))).toEqual({ page: 'admin', section: 'robots', query: new URLSearchParams() });
    const audit = href.admin('audit', '?period=7d&type=io.lading.audit.login');
    expect(parseRoute(audit.split('?')[0], `?${audit.split('?')[1]}`)).toEqual({ page: 'admin', section: 'audit', query: new URLSearchParams('period=7d&type=io.lading.audit.login') });
    expect(parseRoute(href.feed())).toEqual({ page: 'feed' });
  });

  it("tells pages apart by all but an admin section's query: new filters are the same page, a new search is not", () => {
    expect(pageKey(parseRoute('/ui/admin/audit', '?period=7d'))).toBe(pageKey(parseRoute('/ui/admin/audit')));
    expect(pageKey(parseRoute('/ui/admin/audit'))).not.toBe(pageKey(parseRoute('/ui/admin/robots')));
    expect(pageKey(parseRoute('/ui/', '?q=a'))).not.toBe(pageKey(parseRoute('/ui/', '?q=b')));
  });

  it('names no page for an unknown path, an unknown admin section or a malformed image path', () => {
    expect(parseRoute('/ui/admin/secrets').page).toBe('not-found');
    expect(parseRoute('/ui/repositories/a/-/manifests').page).toBe('not-found');
    expect(parseRoute('/elsewhere').page).toBe('not-found');
  });
});
