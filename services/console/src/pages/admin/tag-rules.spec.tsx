/**
 * @jest-environment jsdom
 */
/**
 * A namespace's immutable-tag rules in the console: shown with the namespace, a pattern added to either list and
 * removed, each change one PATCH of the list it changes; a pattern the admin API refuses is refused with the API's
 * own message and nothing shown changes; a namespace admin uses the same form on its namespace.
 */
import { fireEvent, screen, waitFor, within } from '@testing-library/preact';
import { ADMIN, type FakeRoutes, NAMESPACE_ADMIN, fakeServer } from '../../../test/fake-server';
import { renderWithSession } from '../../../test/render';
import { NamespacesSection } from './namespaces';

const TEAM = { prefix: 'team', public: false, grants: [], immutableTags: ['v*'], immutableTagExceptions: ['latest'] };
const PATCH_TEAM = 'PATCH /admin/v1/namespaces?prefix=team';
const REFUSED = {
  status: 400,
  json: { errors: [{ code: 'UNSUPPORTED', message: "immutableTags must be a list of at most 64 tag globs (tag characters, '*' and '?', at most 128 each)" }] },
};

/** A server whose namespace list follows the PATCHes it accepts (as the admin API's does), unless `answer` refuses. */
function serverWith(session: typeof ADMIN, answer?: FakeRoutes[string]) {
  let team = { ...TEAM };
  return fakeServer(session, {
    'GET /admin/v1/namespaces': () => ({ json: { namespaces: [team] } }),
    [PATCH_TEAM]:
      answer ??
      ((request) => {
        team = { ...team, ...(request.body as object) };
        return { json: team };
      }),
  });
}

const rules = () => screen.getByRole('region', { name: 'Tag rules of team' });
const listOf = (name: string) => within(rules()).getByRole('list', { name });

describe('the immutable-tag rules of a namespace', () => {
  it('shows the patterns and the exceptions of each namespace, labelled', async () => {
    renderWithSession(serverWith(ADMIN), <NamespacesSection />);
    await screen.findByRole('heading', { name: 'team private' });
    expect(within(listOf('Immutable tags')).getAllByRole('listitem').map((li) => li.querySelector('code')?.textContent)).toEqual(['v*']);
    expect(within(listOf('Exceptions')).getAllByRole('listitem').map((li) => li.querySelector('code')?.textContent)).toEqual(['latest']);
    expect(screen.getByLabelText('Pattern for team')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Remove v* from the immutable tags of team' })).toBeTruthy();
  });

  it('adds a pattern to the immutable tags, then an exception, each with a PATCH of that list only', async () => {
    const server = serverWith(ADMIN);
    renderWithSession(server, <NamespacesSection />);
    await screen.findByRole('heading', { name: 'team private' });
    fireEvent.input(screen.getByLabelText('Pattern for team'), { target: { value: 'release-*' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add pattern to team' }));
    await within(rules()).findByText('Added release-* to the immutable tags of team.');
    await waitFor(() => expect(within(listOf('Immutable tags')).getByText('release-*')).toBeTruthy());
    expect((screen.getByLabelText('Pattern for team') as HTMLInputElement).value).toBe('');
    fireEvent.input(screen.getByLabelText('Pattern for team'), { target: { value: 'v*-rc?' } });
    fireEvent.change(screen.getByLabelText('Add to the rules of team'), { target: { value: 'immutableTagExceptions' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add pattern to team' }));
    await waitFor(() => expect(within(listOf('Exceptions')).getByText('v*-rc?')).toBeTruthy());
    expect(server.sent('PATCH').map((r) => [r.path, r.body, r.headers['X-CSRF-Token']])).toEqual([
      ['/admin/v1/namespaces?prefix=team', { immutableTags: ['v*', 'release-*'] }, 'csrf-root'],
      ['/admin/v1/namespaces?prefix=team', { immutableTagExceptions: ['latest', 'v*-rc?'] }, 'csrf-root'],
    ]);
  });

  it('removes a pattern, leaving the other list alone', async () => {
    const server = serverWith(ADMIN);
    renderWithSession(server, <NamespacesSection />);
    fireEvent.click(await screen.findByRole('button', { name: 'Remove latest from the exceptions of team' }));
    await within(rules()).findByText('No exceptions.');
    expect(within(listOf('Immutable tags')).getByText('v*')).toBeTruthy();
    expect(server.sent('PATCH').map((r) => r.body)).toEqual([{ immutableTagExceptions: [] }]);
  });

  it("shows the admin API's refusal of a bad pattern in words, keeps what was typed, and changes nothing shown", async () => {
    const server = serverWith(ADMIN, REFUSED);
    renderWithSession(server, <NamespacesSection />);
    await screen.findByRole('heading', { name: 'team private' });
    fireEvent.input(screen.getByLabelText('Pattern for team'), { target: { value: 'v1/beta' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add pattern to team' }));
    const alert = await within(rules()).findByRole('alert');
    expect(alert.textContent).toBe(
      "Adding v1/beta to the immutable tags of team was refused: immutableTags must be a list of at most 64 tag globs (tag characters, '*' and '?', at most 128 each)",
    );
    expect((screen.getByLabelText('Pattern for team') as HTMLInputElement).value).toBe('v1/beta');
    expect(within(listOf('Immutable tags')).queryByText('v1/beta')).toBeNull();
  });

  it('is offered to a namespace admin on its namespace, and sends only the rules (never whether it is public)', async () => {
    const server = serverWith(NAMESPACE_ADMIN);
    renderWithSession(server, <NamespacesSection />);
    await screen.findByRole('heading', { name: 'team private' });
    fireEvent.input(screen.getByLabelText('Pattern for team'), { target: { value: 'stable' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add pattern to team' }));
    await waitFor(() => expect(within(listOf('Immutable tags')).getByText('stable')).toBeTruthy());
    expect(server.sent('PATCH')).toEqual([expect.objectContaining({ body: { immutableTags: ['v*', 'stable'] }, headers: expect.objectContaining({ 'X-CSRF-Token': 'csrf-tess' }) })]);
  });
});
