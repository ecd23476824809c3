/**
 * @jest-environment jsdom
 */
import { fireEvent, screen, waitFor, within } from '@testing-library/preact';
import { ADMIN, ANONYMOUS, AUTH_OFF, SIGNED_IN, fakeServer } from '../../test/fake-server';
import { renderWithSession } from '../../test/render';
import type { TagSummary } from '../types';
import { RepositoryPage } from './repository';

const DIGEST = 'sha256:' + 'a'.repeat(64);
const tag = (name: string): TagSummary => ({
  tag: name,
  digest: DIGEST,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  size: 1_500_000,
  platforms: ['linux/amd64', 'linux/arm64'],
  pushedAt: '2026-12-01T10:00:00.000Z',
  lastPulledAt: null,
});

describe('the repository page', () => {
  it('lists the tags with digest, size, platforms and times, and pull commands for the page host', async () => {
    const server = fakeServer(SIGNED_IN, { 'GET /api/v1/repositories/team/app/tags?n=50': { json: { name: 'team/app', tags: [tag('v1'), tag('latest')] } } });
    renderWithSession(server, <RepositoryPage name="team/app" />);
    const row = (await screen.findByRole('rowheader', { name: 'v1' })).closest('tr') as HTMLElement;
    expect(within(row).getByText('sha256:aaaaaaaaaaaa')).toBeTruthy();
    expect(within(row).getByText('1.5 MB')).toBeTruthy();
    expect(within(row).getByText('linux/amd64, linux/arm64')).toBeTruthy();
    expect(within(row).getByText('2026-12-01 10:00 UTC')).toBeTruthy();
    expect(within(row).getByText('never')).toBeTruthy();
    expect(screen.getByText(`docker pull ${location.host}/team/app:v1`)).toBeTruthy();
    expect(screen.getByText(`podman pull ${location.host}/team/app:v1`)).toBeTruthy();
    expect(screen.getByText(`crane pull ${location.host}/team/app:v1 app.tar`)).toBeTruthy();
    fireEvent.change(screen.getByLabelText('Tag'), { target: { value: 'latest' } });
    expect(screen.getByText(`docker pull ${location.host}/team/app:latest`)).toBeTruthy();
  });

  it('deletes a tag only after the confirmation, sending the CSRF token, then lists the tags again', async () => {
    let tags = [tag('v1'), tag('old')];
    const server = fakeServer(SIGNED_IN, {
      'GET /api/v1/repositories/team/app/tags?n=50': () => ({ json: { name: 'team/app', tags } }),
      'DELETE /v2/team/app/manifests/old': () => {
        tags = [tag('v1')];
        return { status: 202 };
      },
    });
    renderWithSession(server, <RepositoryPage name="team/app" />);
    const remove = await screen.findByRole('button', { name: 'Delete tag old' });
    fireEvent.click(remove);
    const dialog = screen.getByRole('alertdialog', { name: 'Delete tag old?' });
    expect(document.activeElement).toBe(within(dialog).getByRole('button', { name: 'Cancel' }));
    fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('alertdialog')).toBeNull();
    expect(server.sent('DELETE')).toHaveLength(0);

    fireEvent.click(screen.getByRole('button', { name: 'Delete tag old' }));
    fireEvent.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Delete tag' }));
    await screen.findByText('Deleted tag old.');
    expect(server.sent('DELETE')[0].headers['X-CSRF-Token']).toBe('csrf-alice');
    await waitFor(() => expect(screen.queryByRole('rowheader', { name: 'old' })).toBeNull());
  });

  it("shows the server's refusal in the dialog and keeps the tag", async () => {
    const server = fakeServer(SIGNED_IN, {
      'GET /api/v1/repositories/team/app/tags?n=50': { json: { name: 'team/app', tags: [tag('v1')] } },
      'DELETE /v2/team/app/manifests/v1': { status: 403, json: { errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] } },
    });
    renderWithSession(server, <RepositoryPage name="team/app" />);
    fireEvent.click(await screen.findByRole('button', { name: 'Delete tag v1' }));
    fireEvent.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Delete tag' }));
    expect(await within(screen.getByRole('alertdialog')).findByText('requested access to the resource is denied')).toBeTruthy();
  });

  it('offers no deletion to an anonymous visitor when auth is on, and offers it with auth off', async () => {
    const routes = { 'GET /api/v1/repositories/team/app/tags?n=50': { json: { name: 'team/app', tags: [tag('v1')] } } };
    const anonymous = renderWithSession(fakeServer(ANONYMOUS, routes), <RepositoryPage name="team/app" />);
    await screen.findByRole('rowheader', { name: 'v1' });
    expect(screen.queryByRole('button', { name: /Delete/ })).toBeNull();
    anonymous.unmount();
    renderWithSession(fakeServer(AUTH_OFF, routes), <RepositoryPage name="team/app" />);
    expect(await screen.findByRole('button', { name: 'Delete tag v1' })).toBeTruthy();
  });

  it("pages through the tags with the server's next", async () => {
    const server = fakeServer(SIGNED_IN, {
      'GET /api/v1/repositories/team/app/tags?n=50': { json: { name: 'team/app', tags: [tag('a')], next: 'a' } },
      'GET /api/v1/repositories/team/app/tags?n=50&last=a': { json: { name: 'team/app', tags: [tag('b')] } },
    });
    renderWithSession(server, <RepositoryPage name="team/app" />);
    fireEvent.click(await screen.findByRole('button', { name: 'Next page' }));
    expect(await screen.findByRole('rowheader', { name: 'b' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Next page' })).toBeNull();
  });

  it('lets an admin delete the whole repository after confirming, forcing past immutable tags only when asked', async () => {
    const server = fakeServer(ADMIN, {
      'GET /api/v1/repositories/team/app/tags?n=50': { json: { name: 'team/app', tags: [tag('v1')] } },
      'DELETE /admin/v1/repositories/team/app': { status: 403, json: { errors: [{ code: 'DENIED', message: 'team/app holds the immutable tag v1' }] } },
      'DELETE /admin/v1/repositories/team/app?force=true': { json: { repository: 'team/app', tags: 1, manifests: 1, blobsQueued: 3, uploads: 0 } },
      'GET /api/v1/repositories?n=25': { json: { repositories: [] } },
    });
    renderWithSession(server, <RepositoryPage name="team/app" />);
    fireEvent.click(await screen.findByRole('button', { name: 'Delete repository' }));
    const dialog = screen.getByRole('alertdialog', { name: 'Delete the repository team/app?' });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Delete repository' }));
    expect(await within(dialog).findByText('team/app holds the immutable tag v1')).toBeTruthy();
    fireEvent.click(within(dialog).getByLabelText('Delete it even if it holds immutable tags'));
    fireEvent.click(within(dialog).getByRole('button', { name: 'Delete repository' }));
    await waitFor(() => expect(location.pathname).toBe('/ui/'));
    expect(server.sent('DELETE').map((r) => r.path)).toEqual(['/admin/v1/repositories/team/app', '/admin/v1/repositories/team/app?force=true']);
  });

  it('offers deleting the repository to admins only', async () => {
    renderWithSession(fakeServer(SIGNED_IN, { 'GET /api/v1/repositories/team/app/tags?n=50': { json: { name: 'team/app', tags: [tag('v1')] } } }), <RepositoryPage name="team/app" />);
    await screen.findByRole('rowheader', { name: 'v1' });
    expect(screen.queryByRole('button', { name: 'Delete repository' })).toBeNull();
  });
});
