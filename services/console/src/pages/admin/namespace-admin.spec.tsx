/**
 * @jest-environment jsdom
 */
/**
 * The console of a namespace admin (session `adminOf`, issue 24): the admin pages the admin API opens to it, each
 * confined to its namespaces, and none of the global ones. The API is the authority; these prove the console asks
 * it only what a namespace admin may ask.
 */
import { fireEvent, screen, waitFor, within } from '@testing-library/preact';
import { NAMESPACE_ADMIN, fakeServer } from '../../../test/fake-server';
import { renderApp, renderWithSession } from '../../../test/render';
import { GRANT_PRINCIPAL_PATTERN, NamespacesSection } from './namespaces';
import { RobotsSection } from './robots';
import { type Webhook, WebhooksSection } from './webhooks';

const TEAM = { prefix: 'team', public: false, grants: [{ principalType: 'user', principalName: 'pete', role: 'push' }] };

describe('the admin pages of a namespace admin', () => {
  it('leads from Admin to the pages a namespace admin may use, and to none of the global ones', async () => {
    const server = fakeServer(NAMESPACE_ADMIN, { 'GET /admin/v1/namespaces': { json: { namespaces: [TEAM] } } });
    renderApp(server, '/ui/');
    const admin = await screen.findByRole('link', { name: 'Admin' });
    expect(admin.getAttribute('href')).toBe('/ui/admin/namespaces');
    fireEvent.click(admin);
    const sections = await screen.findByRole('navigation', { name: 'Admin sections' });
    expect(within(sections).getAllByRole('link').map((a) => a.textContent)).toEqual(['Namespaces and grants', 'Robot accounts', 'Webhooks', 'Audit log']);
    expect(await screen.findByRole('heading', { name: 'team private' })).toBeTruthy();
  });

  it('says a global page is for global administrators, asking the admin API nothing for it', async () => {
    const server = fakeServer(NAMESPACE_ADMIN);
    renderApp(server, '/ui/admin/users');
    expect(await screen.findByText(/This page is for global administrators/)).toBeTruthy();
    expect(screen.getByRole('navigation', { name: 'Admin sections' })).toBeTruthy();
    expect(server.sent().filter((r) => r.path.startsWith('/admin/'))).toEqual([]);
  });

  it('still shows no admin pages to a user who administers nothing', async () => {
    renderApp(fakeServer({ ...NAMESPACE_ADMIN, adminOf: [] }), '/ui/admin/namespaces');
    expect(await screen.findByText(/Only administrators/)).toBeTruthy();
    expect(screen.queryByRole('link', { name: 'Admin' })).toBeNull();
  });

  it('grants roles on its namespaces, but offers neither creating nor deleting a namespace', async () => {
    const server = fakeServer(NAMESPACE_ADMIN, {
      'GET /admin/v1/namespaces': { json: { namespaces: [TEAM] } },
      'POST /admin/v1/grants': { status: 201, json: {} },
    });
    renderWithSession(server, <NamespacesSection />);
    await screen.findByRole('heading', { name: 'team private' });
    expect(screen.queryByRole('heading', { name: 'New namespace' })).toBeNull();
    expect(screen.queryByRole('button', { name: /Delete namespace/ })).toBeNull();
    fireEvent.change(screen.getByLabelText('Namespace'), { target: { value: 'team' } });
    fireEvent.input(screen.getByLabelText('Principal'), { target: { value: 'user:gina' } });
    fireEvent.click(screen.getByRole('button', { name: 'Grant' }));
    await waitFor(() => expect(server.sent('POST')).toHaveLength(1));
    expect(server.sent('POST')[0]).toMatchObject({ path: '/admin/v1/grants', body: { prefix: 'team', principal: 'user:gina', role: 'pull' }, headers: { 'X-CSRF-Token': 'csrf-tess' } });
  });

  it("grants to a namespace robot and to a provider group, and the form refuses what the admin API would", async () => {
    // As a browser compiles the pattern attribute: anchored, with the v flag.
    const accepts = (value: string) => new RegExp(`^(?:${GRANT_PRINCIPAL_PATTERN})$`, 'v').test(value);
    for (const ok of ['user:gina', 'robot:ci', 'robot:team+ci', 'robot:team/sub+ci', 'group:platform', 'group:Platform Team@corp']) expect([ok, accepts(ok)]).toEqual([ok, true]);
    for (const bad of ['gina', 'user:Gina', 'robot:team+', 'robot:+ci', 'group:', 'group: lead', 'team:ci', 'user:gina\n']) expect([bad, accepts(bad)]).toEqual([bad, false]);

    const server = fakeServer(NAMESPACE_ADMIN, {
      'GET /admin/v1/namespaces': { json: { namespaces: [TEAM] } },
      'POST /admin/v1/grants': { status: 201, json: {} },
    });
    renderWithSession(server, <NamespacesSection />);
    await screen.findByRole('heading', { name: 'team private' });
    const principal = screen.getByLabelText('Principal') as HTMLInputElement;
    fireEvent.input(principal, { target: { value: 'robot:team+builder' } });
    expect(principal.validity.patternMismatch).toBe(false);
    fireEvent.input(principal, { target: { value: 'robot:team+' } });
    expect(principal.validity.patternMismatch).toBe(true);
    fireEvent.change(screen.getByLabelText('Namespace'), { target: { value: 'team' } });
    fireEvent.input(principal, { target: { value: 'group:platform' } });
    expect(principal.validity.patternMismatch).toBe(false);
    fireEvent.click(screen.getByRole('button', { name: 'Grant' }));
    await waitFor(() => expect(server.sent('POST')).toHaveLength(1));
    expect(server.sent('POST')[0]).toMatchObject({ path: '/admin/v1/grants', body: { prefix: 'team', principal: 'group:platform', role: 'pull' } });
  });

  it('creates a robot in a namespace chosen from its own, and revokes one by its <namespace>+<name>', async () => {
    let robots = [{ name: 'team+old', login: 'robot$team+old', expiresAt: null, revokedAt: null, createdBy: 'tess' }];
    const server = fakeServer(NAMESPACE_ADMIN, {
      'GET /admin/v1/robots': () => ({ json: { robots } }),
      'POST /admin/v1/robots': (request) => {
        const body = request.body as { name: string; namespace: string };
        const name = `${body.namespace}+${body.name}`;
        robots = [...robots, { name, login: `robot$${name}`, expiresAt: null, revokedAt: null, createdBy: 'tess' }];
        return { status: 201, json: { name, namespace: body.namespace, login: `robot$${name}`, secret: 'lrs_secret' } };
      },
      'DELETE /admin/v1/robots/team%2Bold': { status: 204 },
    });
    renderWithSession(server, <RobotsSection />);
    await screen.findByText('robot$team+old');
    const namespace = screen.getByLabelText('Namespace') as HTMLSelectElement;
    expect([...namespace.options].map((o) => o.value)).toEqual(['team', 'web']);
    expect(namespace.required).toBe(true);
    fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'ci' } });
    fireEvent.change(namespace, { target: { value: 'web' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create robot' }));
    const panel = await screen.findByRole('region', { name: 'Robot web+ci created' });
    expect(within(panel).getByText('robot$web+ci')).toBeTruthy();
    expect(server.sent('POST')[0]).toMatchObject({ body: { name: 'ci', namespace: 'web' } });

    fireEvent.click(within(panel).getByRole('button', { name: /I have stored it/ }));
    fireEvent.click(await screen.findByRole('button', { name: 'Revoke robot team+old' }));
    fireEvent.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Revoke robot' }));
    await waitFor(() => expect(server.sent('DELETE').map((r) => r.path)).toEqual(['/admin/v1/robots/team%2Bold']));
  });

  it('creates a webhook confined to one of its namespaces, never one for every repository', async () => {
    const ID = '0193a2c4-5e6f-7abc-8def-0123456789ab';
    const server = fakeServer(NAMESPACE_ADMIN, {
      'GET /admin/v1/webhooks': { json: { webhooks: [] } },
      'POST /admin/v1/webhooks': (request) => ({ status: 201, json: { ...(request.body as Omit<Webhook, 'id'>), id: ID, secret: 'whsec_x' } }),
    });
    renderWithSession(server, <WebhooksSection />);
    await screen.findByText('No webhooks yet.');
    const namespace = screen.getByLabelText('Namespace') as HTMLSelectElement;
    expect([...namespace.options].map((o) => o.value)).toEqual(['team', 'web']);
    expect(screen.queryByLabelText('Namespace (optional)')).toBeNull();
    fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'deploys' } });
    fireEvent.input(screen.getByLabelText('URL'), { target: { value: 'https://ci.test/hook' } });
    fireEvent.change(namespace, { target: { value: 'web' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create webhook' }));
    await waitFor(() => expect(server.sent('POST')).toHaveLength(1));
    expect(server.sent('POST')[0]).toMatchObject({ body: { name: 'deploys', namespace: 'web' } });
  });

  it('reads the audit of one of its namespaces: every query names it', async () => {
    const server = fakeServer(NAMESPACE_ADMIN, {
      'GET /admin/v1/audit?since=24h&namespace=team&order=newest&n=50': { json: { entries: [], next: null } },
      'GET /admin/v1/audit?since=24h&namespace=web&order=newest&n=50': { json: { entries: [], next: null } },
    });
    // The whole app, which renders a page once the session is in: so the very first query is the namespace's.
    renderApp(server, '/ui/admin/audit');
    await waitFor(() => expect(server.sent('GET').map((r) => r.path)).toEqual(['/admin/v1/audit?since=24h&namespace=team&order=newest&n=50']));
    fireEvent.change(screen.getByLabelText('Namespace'), { target: { value: 'web' } });
    fireEvent.click(screen.getByRole('button', { name: 'Show entries' }));
    await waitFor(() => expect(server.sent('GET').map((r) => r.path)).toContain('/admin/v1/audit?since=24h&namespace=web&order=newest&n=50'));
    expect(server.sent('GET').every((r) => r.path.includes('namespace='))).toBe(true);
    expect(location.search).toBe('?namespace=web');
  });
});
