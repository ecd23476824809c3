/**
 * @jest-environment jsdom
 */
import { fireEvent, screen, waitFor } from '@testing-library/preact';
import { ANONYMOUS, AUTH_OFF, SIGNED_IN, fakeServer } from '../../test/fake-server';
import { renderApp } from '../../test/render';

describe('signing in', () => {
  it('signs in with a username and password, then goes back to the page it came from as that user', async () => {
    const server = fakeServer(ANONYMOUS, {
      'POST /ui/api/session': { json: { user: 'alice', admin: false, csrf: 'csrf-new' } },
      'GET /api/v1/repositories?n=25': { json: { repositories: [] } },
      'DELETE /ui/api/session': { status: 204 },
    });
    renderApp(server, '/ui/sign-in?next=%2Fui%2F%3Flast%3Da');
    fireEvent.input(await screen.findByLabelText('Username'), { target: { value: 'alice' } });
    fireEvent.input(screen.getByLabelText('Password or personal access token'), { target: { value: 'pw-of-alice' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText('alice')).toBeTruthy();
    expect(server.sent('POST')[0].body).toEqual({ username: 'alice', password: 'pw-of-alice' });
    expect(location.pathname + location.search).toBe('/ui/?last=a');
    // The session's CSRF token goes with what changes something from now on.
    fireEvent.click(screen.getByRole('button', { name: 'Sign out' }));
    await waitFor(() => expect(server.sent('DELETE')[0]?.headers['X-CSRF-Token']).toBe('csrf-new'));
    expect(await screen.findByRole('link', { name: 'Sign in' })).toBeTruthy();
  });

  it('says the username or the password is wrong on a 401, and stays on the form', async () => {
    const server = fakeServer(ANONYMOUS, { 'POST /ui/api/session': { status: 401, json: { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] } } });
    renderApp(server, '/ui/sign-in');
    fireEvent.input(await screen.findByLabelText('Username'), { target: { value: 'alice' } });
    fireEvent.input(screen.getByLabelText('Password or personal access token'), { target: { value: 'wrong' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toBe('The username or the password is wrong.');
    expect(location.pathname).toBe('/ui/sign-in');
  });

  it('never follows a next that leaves the console', async () => {
    const server = fakeServer(ANONYMOUS, { 'POST /ui/api/session': { json: { user: 'alice', admin: false, csrf: 'c' } }, 'GET /api/v1/repositories?n=25': { json: { repositories: [] } } });
    renderApp(server, '/ui/sign-in?next=https%3A%2F%2Fevil.test%2F');
    fireEvent.input(await screen.findByLabelText('Username'), { target: { value: 'alice' } });
    fireEvent.input(screen.getByLabelText('Password or personal access token'), { target: { value: 'pw' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(location.pathname).toBe('/ui/'));
  });

  it('offers company sign-in when the registry has it, as a real navigation to the server', async () => {
    renderApp(fakeServer({ ...ANONYMOUS, oidc: true }), '/ui/sign-in');
    const link = await screen.findByRole('link', { name: 'Sign in with your company account' });
    expect(link.getAttribute('href')).toBe('/ui/api/oidc/login');
    // Not taken over by the console's router: the browser follows it (to the provider and back).
    expect(fireEvent.click(link)).toBe(true);
    expect(screen.getByLabelText('Username')).toBeTruthy();
  });

  it('says in words why a company sign-in was refused, and never shows text the link brings', async () => {
    renderApp(fakeServer({ ...ANONYMOUS, oidc: true }), '/ui/sign-in?refused=not-allowed');
    expect((await screen.findByRole('alert')).textContent).toContain('Company sign-in refused. Your company account may not sign in to this registry: it is in none of the groups allowed here');
    expect(screen.getByRole('link', { name: 'Sign in with your company account' })).toBeTruthy();
  });

  it('words an unknown refusal reason as a failed sign-in', async () => {
    renderApp(fakeServer({ ...ANONYMOUS, oidc: true }), '/ui/sign-in?refused=Call%20us%20at%20555');
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toBe('Company sign-in refused. The company sign-in did not complete. Start it again.');
  });

  it("ends the provider's session too after signing out of one signed in through it", async () => {
    const leave = jest.fn();
    const server = fakeServer(
      { ...SIGNED_IN, oidc: true, logoutUrl: 'https://login.example.test/logout?client_id=lading' },
      { 'DELETE /ui/api/session': { status: 204 }, 'GET /api/v1/repositories?n=25': { json: { repositories: [] } } },
    );
    renderApp(server, '/ui/', { leave });
    fireEvent.click(await screen.findByRole('button', { name: 'Sign out' }));
    await waitFor(() => expect(leave).toHaveBeenCalledWith('https://login.example.test/logout?client_id=lading'));
  });

  it('offers no company sign-in when the registry has none', async () => {
    renderApp(fakeServer(ANONYMOUS), '/ui/sign-in');
    await screen.findByLabelText('Username');
    expect(screen.queryByRole('link', { name: /company account/ })).toBeNull();
  });

  it('offers no sign-in when auth is off', async () => {
    renderApp(fakeServer(AUTH_OFF), '/ui/sign-in');
    expect(await screen.findByText(/Authentication is off/)).toBeTruthy();
    expect(screen.queryByLabelText('Username')).toBeNull();
    expect(screen.queryByRole('link', { name: 'Sign in' })).toBeNull();
  });
});
