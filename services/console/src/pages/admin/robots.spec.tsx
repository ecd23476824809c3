/**
 * @jest-environment jsdom
 */
import { fireEvent, screen, waitFor, within } from '@testing-library/preact';
import { ADMIN, fakeServer } from '../../../test/fake-server';
import { renderWithSession } from '../../../test/render';
import { RobotsSection } from './robots';

describe('the robots admin section', () => {
  it("shows a robot's secret once and never again after closing", async () => {
    let robots = [{ name: 'old', login: 'robot$old', expiresAt: null, revokedAt: null, createdBy: 'root' }];
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/robots': () => ({ json: { robots } }),
      'POST /admin/v1/robots': (request) => {
        robots = [...robots, { name: 'ci', login: 'robot$ci', expiresAt: null, revokedAt: null, createdBy: 'root' }];
        return { status: 201, json: { name: (request.body as { name: string }).name, login: 'robot$ci', secret: 'lrs_the-secret' } };
      },
    });
    renderWithSession(server, <RobotsSection />);
    await screen.findByText('robot$old');
    fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'ci' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create robot' }));

    const panel = await screen.findByRole('region', { name: 'Robot ci created' });
    expect(within(panel).getByText('lrs_the-secret')).toBeTruthy();
    expect(within(panel).getByText(/shown only this once/)).toBeTruthy();
    expect(within(panel).getByRole('button', { name: 'Copy the secret' })).toBeTruthy();
    await waitFor(() => expect(document.activeElement).toBe(within(panel).getByRole('heading')));
    expect(server.sent('POST')[0]).toMatchObject({ body: { name: 'ci' }, headers: { 'X-CSRF-Token': 'csrf-root' } });

    fireEvent.click(within(panel).getByRole('button', { name: /I have stored it/ }));
    await screen.findByText('robot$ci');
    expect(screen.queryByText('lrs_the-secret')).toBeNull();
    expect(document.body.textContent).not.toContain('lrs_the-secret');
  });

  it('revokes a robot only after confirming', async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/robots': { json: { robots: [{ name: 'ci', login: 'robot$ci', expiresAt: null, revokedAt: null, createdBy: 'root' }] } },
      'DELETE /admin/v1/robots/ci': { status: 204 },
    });
    renderWithSession(server, <RobotsSection />);
    fireEvent.click(await screen.findByRole('button', { name: 'Revoke robot ci' }));
    const dialog = screen.getByRole('alertdialog', { name: 'Revoke robot ci?' });
    expect(server.sent('DELETE')).toHaveLength(0);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Revoke robot' }));
    await waitFor(() => expect(server.sent('DELETE')).toHaveLength(1));
  });
});
