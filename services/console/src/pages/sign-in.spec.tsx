/**
 * @jest-environment jsdom
 */
import { fireEvent, screen, waitFor } from '@testing-library/preact';
import { ANONYMOUS, AUTH_OFF, fakeServer } from '../../test/fake-server';
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

  it('offers no sign-in when auth is off', async () => {
    renderApp(fakeServer(AUTH_OFF), '/ui/sign-in');
    expect(await screen.findByText(/Authentication is off/)).toBeTruthy();
    expect(screen.queryByLabelText('Username')).toBeNull();
    expect(screen.queryByRole('link', { name: 'Sign in' })).toBeNull();
  });
});
