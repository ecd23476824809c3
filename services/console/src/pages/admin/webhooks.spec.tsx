/**
 * @jest-environment jsdom
 */
import { fireEvent, screen, waitFor, within } from '@testing-library/preact';
import { ADMIN, fakeServer } from '../../../test/fake-server';
import { renderWithSession } from '../../../test/render';
import { type Webhook, WebhooksSection } from './webhooks';

const ID = '0193a2c4-5e6f-7abc-8def-0123456789ab';
const CI: Webhook = { id: ID, name: 'ci', namespace: 'team', url: 'https://ci.test/hook', format: 'cloudevents', eventTypes: [], enabled: true };

describe('the webhooks admin section', () => {
  it('creates a subscription with the chosen event types and shows its signing secret once, saying how it is kept', async () => {
    let webhooks: Webhook[] = [];
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/webhooks': () => ({ json: { webhooks } }),
      'POST /admin/v1/webhooks': (request) => {
        const body = request.body as Omit<Webhook, 'id'>;
        webhooks = [{ ...body, id: ID }];
        return { status: 201, json: { ...webhooks[0], secret: 'whsec_shown-once' } };
      },
    });
    renderWithSession(server, <WebhooksSection />);
    await screen.findByText('No webhooks yet.');
    fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'deploys' } });
    fireEvent.input(screen.getByLabelText('URL'), { target: { value: 'https://ci.test/hook' } });
    fireEvent.input(screen.getByLabelText('Namespace (optional)'), { target: { value: 'team' } });
    fireEvent.change(screen.getByLabelText('Format'), { target: { value: 'distribution' } });
    fireEvent.click(within(screen.getByRole('group', { name: 'Event types' })).getByLabelText('manifest pushed'));
    fireEvent.click(screen.getByRole('button', { name: 'Create webhook' }));

    const panel = await screen.findByRole('region', { name: 'Webhook deploys created: its signing secret' });
    expect(within(panel).getByText('whsec_shown-once')).toBeTruthy();
    // Kept sealed to sign deliveries, not as a hash as a login's secret is: the warning says which.
    expect(within(panel).getByText(/keeps it sealed/).textContent).not.toMatch(/hash/);
    await waitFor(() => expect(document.activeElement).toBe(within(panel).getByRole('heading')));
    expect(server.sent('POST')[0]).toMatchObject({
      body: { name: 'deploys', url: 'https://ci.test/hook', namespace: 'team', format: 'distribution', eventTypes: ['io.lading.manifest.pushed'], enabled: true },
      headers: { 'X-CSRF-Token': 'csrf-root' },
    });
    expect(await screen.findByRole('rowheader', { name: 'deploys' })).toBeTruthy();
    expect((screen.getByLabelText('Name') as HTMLInputElement).value).toBe('');

    fireEvent.click(within(panel).getByRole('button', { name: /I have stored it/ }));
    expect(document.body.textContent).not.toContain('whsec_shown-once');
  });

  it("shows the server's refusal of a subscription and keeps what was typed", async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/webhooks': { json: { webhooks: [] } },
      'POST /admin/v1/webhooks': { status: 400, json: { errors: [{ code: 'UNSUPPORTED', message: 'url resolves to a private address' }] } },
    });
    renderWithSession(server, <WebhooksSection />);
    fireEvent.input(await screen.findByLabelText('Name'), { target: { value: 'local' } });
    fireEvent.input(screen.getByLabelText('URL'), { target: { value: 'http://10.0.0.1/hook' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create webhook' }));
    expect((await screen.findByRole('alert')).textContent).toContain('url resolves to a private address');
    expect((screen.getByLabelText('URL') as HTMLInputElement).value).toBe('http://10.0.0.1/hook');
  });

  it('rotates the secret only after confirming, and shows the new one once', async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/webhooks': { json: { webhooks: [CI] } },
      [`POST /admin/v1/webhooks/${ID}/rotate`]: { json: { id: ID, secret: 'whsec_rotated' } },
    });
    renderWithSession(server, <WebhooksSection />);
    fireEvent.click(await screen.findByRole('button', { name: 'Rotate secret of ci' }));
    const dialog = screen.getByRole('alertdialog', { name: 'Rotate the secret of ci?' });
    expect(server.sent('POST')).toHaveLength(0);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Rotate secret' }));
    const panel = await screen.findByRole('region', { name: 'New signing secret of ci' });
    expect(within(panel).getByText('whsec_rotated')).toBeTruthy();
    expect(screen.queryByRole('alertdialog')).toBeNull();
  });

  it('deletes a subscription only after confirming', async () => {
    let webhooks = [CI];
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/webhooks': () => ({ json: { webhooks } }),
      [`DELETE /admin/v1/webhooks/${ID}`]: () => {
        webhooks = [];
        return { status: 204 };
      },
    });
    renderWithSession(server, <WebhooksSection />);
    fireEvent.click(await screen.findByRole('button', { name: 'Delete webhook ci' }));
    expect(server.sent('DELETE')).toHaveLength(0);
    fireEvent.click(within(screen.getByRole('alertdialog', { name: 'Delete webhook ci?' })).getByRole('button', { name: 'Delete webhook' }));
    await screen.findByText('No webhooks yet.');
    expect(server.sent('DELETE')).toHaveLength(1);
  });
});
