/**
 * @jest-environment jsdom
 */
import { fireEvent, screen, within } from '@testing-library/preact';
import { AUTH_OFF, SIGNED_IN, fakeServer } from '../../test/fake-server';
import { renderApp } from '../../test/render';
import { isSearch } from './home';

const RESULT = {
  repository: 'team/app',
  namespace: 'team',
  match: 'name',
  similarity: 1,
  title: 'The app',
  description: 'It serves',
  source: null,
  pushedAt: '2026-12-01T10:00:00.000Z',
  tags: ['v1', 'latest'],
};

describe('the repositories page', () => {
  it("lists every repository a page at a time, following the server's next", async () => {
    const server = fakeServer(AUTH_OFF, {
      'GET /api/v1/repositories?n=25': { json: { repositories: [{ name: 'a/one', tagCount: 2, lastPushedAt: null }], next: 'a/one' } },
      'GET /api/v1/repositories?n=25&last=a%2Fone': { json: { repositories: [{ name: 'b/two', tagCount: 1, lastPushedAt: '2026-12-01T10:00:00.000Z' }] } },
    });
    renderApp(server, '/ui/');
    const first = await screen.findByRole('rowheader', { name: 'a/one' });
    expect(within(first.closest('tr') as HTMLElement).getByText('2')).toBeTruthy();
    fireEvent.click(screen.getByRole('link', { name: 'Next page' }));
    expect(await screen.findByRole('rowheader', { name: 'b/two' })).toBeTruthy();
    expect(location.search).toBe('?last=a%2Fone');
    expect(screen.queryByRole('link', { name: 'Next page' })).toBeNull();
    expect(screen.getByRole('link', { name: 'First page' })).toBeTruthy();
  });

  it('searches with the term and filters in the URL, and shows the matching tags as links', async () => {
    const server = fakeServer(SIGNED_IN, {
      'GET /api/v1/repositories?n=25': { json: { repositories: [] } },
      'GET /api/v1/search?q=app&platform=linux%2Farm64&n=25&page=1': { json: { query: 'app', page: 1, pageSize: 25, total: 30, pages: 2, capped: false, results: [RESULT] } },
      'GET /api/v1/search?q=app&platform=linux%2Farm64&n=25&page=2': { json: { query: 'app', page: 2, pageSize: 25, total: 30, pages: 2, capped: false, results: [] } },
    });
    renderApp(server, '/ui/');
    const form = await screen.findByRole('search');
    fireEvent.input(within(form).getByLabelText('Search repositories'), { target: { value: 'app' } });
    fireEvent.input(within(form).getByLabelText('Platform'), { target: { value: 'linux/arm64' } });
    fireEvent.click(within(form).getByRole('button', { name: 'Search' }));
    expect(await screen.findByRole('heading', { name: '30 repositories match' })).toBeTruthy();
    expect(location.search).toBe('?q=app&platform=linux%2Farm64');
    expect(screen.getByRole('link', { name: 'team/app' }).getAttribute('href')).toBe('/ui/repositories/team/app');
    expect(screen.getByRole('link', { name: 'latest' }).getAttribute('href')).toBe('/ui/repositories/team/app/-/manifests/latest');
    expect(screen.getByText('Page 1 of 2')).toBeTruthy();
    fireEvent.click(screen.getByRole('link', { name: 'Next page' }));
    expect(await screen.findByText('Page 2 of 2')).toBeTruthy();
  });

  it('tells a search (a term or any filter) from the plain list', () => {
    expect(isSearch(new URLSearchParams(''))).toBe(false);
    expect(isSearch(new URLSearchParams('last=a'))).toBe(false);
    expect(isSearch(new URLSearchParams('label=a%3Db'))).toBe(true);
  });
});
