/**
 * @jest-environment jsdom
 */
import { fireEvent, screen, waitFor, within } from '@testing-library/preact';
import { ADMIN, ANONYMOUS, AUTH_OFF, SIGNED_IN, fakeServer } from '../test/fake-server';
import { renderApp } from '../test/render';

const routes = {
  'GET /api/v1/repositories?n=25': { json: { repositories: [{ name: 'team/app', tagCount: 1, lastPushedAt: null }] } },
  'GET /api/v1/repositories/team/app/tags?n=50': { json: { name: 'team/app', tags: [] } },
};

describe('the console shell', () => {
  it("moves focus to the new page's heading and titles the document after following a link, without reloading", async () => {
    renderApp(fakeServer(SIGNED_IN, routes), '/ui/');
    fireEvent.click(await screen.findByRole('link', { name: 'team/app' }));
    const heading = await screen.findByRole('heading', { level: 1, name: 'team/app' });
    await waitFor(() => expect(document.activeElement).toBe(heading));
    expect(document.title).toBe('team/app · Lading');
    expect(location.pathname).toBe('/ui/repositories/team/app');
  });

  it('follows the browser back to the previous page', async () => {
    renderApp(fakeServer(SIGNED_IN, routes), '/ui/');
    fireEvent.click(await screen.findByRole('link', { name: 'team/app' }));
    await screen.findByRole('heading', { level: 1, name: 'team/app' });
    history.back();
    expect(await screen.findByRole('heading', { level: 1, name: 'Repositories' })).toBeTruthy();
  });

  it('has a skip link, a banner, a labelled main navigation and a main landmark', async () => {
    renderApp(fakeServer(SIGNED_IN, routes), '/ui/');
    await screen.findByRole('heading', { level: 1 });
    expect(screen.getByRole('link', { name: 'Skip to content' }).getAttribute('href')).toBe('#main');
    expect(screen.getByRole('banner')).toBeTruthy();
    expect(screen.getByRole('navigation', { name: 'Main' })).toBeTruthy();
    expect(screen.getByRole('main')).toBeTruthy();
    expect(within(screen.getByRole('navigation', { name: 'Main' })).getByRole('link', { name: 'Repositories' }).getAttribute('aria-current')).toBe('page');
  });

  it('shows the admin pages only to admins', async () => {
    const user = renderApp(fakeServer(SIGNED_IN, routes), '/ui/admin/robots');
    expect(await screen.findByText(/Only administrators/)).toBeTruthy();
    expect(screen.queryByRole('link', { name: 'Admin' })).toBeNull();
    user.unmount();
    renderApp(fakeServer(ADMIN, { 'GET /admin/v1/robots': { json: { robots: [] } } }), '/ui/admin/robots');
    expect(await screen.findByRole('heading', { level: 1, name: 'Robot accounts' })).toBeTruthy();
    expect(screen.getByRole('navigation', { name: 'Admin sections' })).toBeTruthy();
  });

  it("with auth off, leads from Admin to how to administer the registry, asking the admin API nothing", async () => {
    const server = fakeServer(AUTH_OFF, routes);
    renderApp(server, '/ui/admin/users');
    expect(await screen.findByRole('heading', { name: 'Authentication is off on this registry' })).toBeTruthy();
    expect(screen.getByText(/still answers only an administrator's credentials/)).toBeTruthy();
    expect(screen.getByRole('link', { name: 'Admin' }).getAttribute('aria-current')).toBe('page');
    expect(screen.queryByRole('navigation', { name: 'Admin sections' })).toBeNull();
    expect(server.sent().filter((r) => r.path.startsWith('/admin/'))).toEqual([]);
  });

  it('offers an anonymous visitor a sign-in link back to the current page', async () => {
    renderApp(fakeServer(ANONYMOUS, routes), '/ui/?last=x');
    expect((await screen.findByRole('link', { name: 'Sign in' })).getAttribute('href')).toBe('/ui/sign-in?next=%2Fui%2F%3Flast%3Dx');
  });

  it('says a path names no page', async () => {
    renderApp(fakeServer(SIGNED_IN), '/ui/nowhere/at/all');
    expect(await screen.findByRole('heading', { level: 1, name: 'Page not found' })).toBeTruthy();
  });
});
