/**
 * @jest-environment jsdom
 */
import { fireEvent, screen, waitFor, within } from '@testing-library/preact';
import { ADMIN, fakeServer } from '../../../test/fake-server';
import { renderWithSession } from '../../../test/render';
import { CollectorSection } from './collector';
import { NamespacesSection } from './namespaces';
import { OutboxSection } from './outbox';
import { TokensSection } from './tokens';
import { UsersSection } from './users';
import { WebhooksSection } from './webhooks';

const WEBHOOK_ID = '0193a2c4-5e6f-7abc-8def-0123456789ab';
const DELIVERY_ID = '0193a2c4-5e6f-7abc-8def-0123456789ac';

const RUN = { startedAt: '2026-12-07T10:00:00Z', finishedAt: '2026-12-07T10:01:00Z', requestedBy: 'root', outcome: 'done', deleted: { manifests: 0, blobs: 2 }, bytesFreed: 3_000_000 };
const EMPTY_PLAN = { generatedAt: '2026-12-07T10:00:00Z', items: [], totals: { tags: 0, manifests: 0, blobs: 0, bytes: 0, uploads: 0, kept: 0, later: 0 } };
const gcStatus = (over: Record<string, unknown> = {}) => ({
  queues: { blobReviews: { size: 4, due: 2, overdue: 1 }, manifestReviews: { size: 0, due: 0, overdue: 0 }, tombstones: { blob: 1, upload: 0, failing: 0 }, pins: 0 },
  counters: { deleted: { manifests: 3, blobs: 5, objects: 0, uploads: 0, tags: 0 }, bytesFreed: 12_000_000, storageErrors: 0, errors: 0 },
  collecting: false,
  collectionQueued: false,
  runs: [],
  ...over,
});

describe('the admin sections', () => {
  it("creates a user and disables another, but offers nothing against the admin's own account", async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/users': {
        json: {
          users: [
            { name: 'root', isAdmin: true, disabled: false, createdAt: '2026-12-01T00:00:00Z' },
            { name: 'bob', isAdmin: false, disabled: false, createdAt: '2026-12-01T00:00:00Z' },
          ],
        },
      },
      'POST /admin/v1/users': { status: 201, json: { name: 'carol', admin: true } },
      'POST /admin/v1/users/bob/disable': { status: 204 },
    });
    renderWithSession(server, <UsersSection />);
    const root = (await screen.findByRole('rowheader', { name: 'root' })).closest('tr') as HTMLElement;
    expect(within(root).queryAllByRole('button')).toHaveLength(0);
    fireEvent.click(screen.getByRole('button', { name: 'Disable bob' }));
    await waitFor(() => expect(server.sent('POST').map((r) => r.path)).toEqual(['/admin/v1/users/bob/disable']));
    fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'carol' } });
    fireEvent.input(screen.getByLabelText('Password (at least 8 characters)'), { target: { value: 'long-enough' } });
    fireEvent.click(screen.getByLabelText('Administrator'));
    fireEvent.click(screen.getByRole('button', { name: 'Create user' }));
    await screen.findByText('Created user carol.');
    expect(server.sent('POST')[1].body).toEqual({ name: 'carol', password: 'long-enough', admin: true });
  });

  it("shows a new personal access token once, for the signed-in admin's own account by default", async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/users/root/tokens': { json: { tokens: [] } },
      'POST /admin/v1/users/root/tokens': { status: 201, json: { name: 'laptop', token: 'lpat_secret' } },
    });
    renderWithSession(server, <TokensSection />);
    await screen.findByText('No tokens.');
    fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'laptop' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create token' }));
    const panel = await screen.findByRole('region', { name: 'Token laptop created for root' });
    expect(within(panel).getByText('lpat_secret')).toBeTruthy();
    fireEvent.click(within(panel).getByRole('button', { name: /I have stored it/ }));
    expect(screen.queryByText('lpat_secret')).toBeNull();
  });

  it("grants a role to a robot on a namespace and removes a grant, naming the robot without its robot$", async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/namespaces': { json: { namespaces: [{ prefix: 'team', public: false, grants: [{ principalType: 'robot', principalName: 'robot$ci', role: 'push' }] }] } },
      'POST /admin/v1/grants': { status: 201, json: {} },
      'DELETE /admin/v1/grants': { status: 204 },
    });
    renderWithSession(server, <NamespacesSection />);
    await screen.findByText('robot:ci');
    fireEvent.change(screen.getByLabelText('Namespace'), { target: { value: 'team' } });
    fireEvent.input(screen.getByLabelText('Principal'), { target: { value: 'user:alice' } });
    fireEvent.change(screen.getByLabelText('Role', { selector: 'select' }), { target: { value: 'delete' } });
    fireEvent.click(screen.getByRole('button', { name: 'Grant' }));
    await waitFor(() => expect(server.sent('POST')[0]?.body).toEqual({ prefix: 'team', principal: 'user:alice', role: 'delete' }));
    fireEvent.click(screen.getByRole('button', { name: 'Remove the push grant of robot:ci' }));
    await waitFor(() => expect(server.sent('DELETE')[0]?.body).toEqual({ prefix: 'team', principal: 'robot:ci', role: 'push' }));
  });

  it("lists a webhook's dead letters and redelivers one", async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/webhooks': { json: { webhooks: [{ id: WEBHOOK_ID, name: 'ci', namespace: 'team', url: 'https://ci.test/hook', format: 'cloudevents', eventTypes: [], enabled: true }] } },
      [`GET /admin/v1/webhooks/${WEBHOOK_ID}/deliveries?n=50`]: { json: { deliveries: [] } },
      [`GET /admin/v1/webhooks/${WEBHOOK_ID}/deliveries?n=50&status=dead`]: {
        json: {
          deliveries: [
            { id: DELIVERY_ID, eventType: 'io.lading.manifest.pushed', repository: 'team/app', status: 'dead', attempts: 8, lastStatus: 500, lastError: null, createdAt: '2026-12-07T10:00:00Z', finishedAt: null },
          ],
        },
      },
      [`POST /admin/v1/webhooks/${WEBHOOK_ID}/deliveries/${DELIVERY_ID}/redeliver`]: { status: 202, json: {} },
    });
    renderWithSession(server, <WebhooksSection />);
    fireEvent.click(await screen.findByRole('button', { name: 'Deliveries of ci' }));
    fireEvent.change(await screen.findByLabelText('Status'), { target: { value: 'dead' } });
    fireEvent.click(await screen.findByRole('button', { name: 'Redeliver io.lading.manifest.pushed of team/app' }));
    await waitFor(() => expect(server.sent('POST')).toHaveLength(1));
  });

  it('requeues a parked outbox row', async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/outbox/parked': {
        json: { parked: [{ id: WEBHOOK_ID, repository: 'team/app', sequence: 7, type: 'io.lading.tag.updated', attempts: 20, lastError: 'the bus refused it', parkedAt: '2026-12-07T10:00:00Z' }] },
      },
      [`POST /admin/v1/outbox/parked/${WEBHOOK_ID}/requeue`]: { json: { id: WEBHOOK_ID, requeued: true } },
    });
    renderWithSession(server, <OutboxSection />);
    expect(await screen.findByText('the bus refused it')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Requeue io.lading.tag.updated of team/app' }));
    await waitFor(() => expect(server.sent('POST')).toHaveLength(1));
  });

  it("shows the collector's queues, what it deleted, and the collections asked for with who asked", async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/gc/status': { json: gcStatus({ collecting: true, runs: [RUN, { ...RUN, startedAt: '2026-12-07T09:00:00Z', requestedBy: 'wi$nightly', outcome: 'failed', error: 'the store is down', deleted: undefined, bytesFreed: undefined }] }) },
      'GET /admin/v1/gc/dry-run': { json: EMPTY_PLAN },
    });
    renderWithSession(server, <CollectorSection />);
    const queues = await screen.findByRole('table', { name: 'Queued reviews' });
    expect(within(queues).getAllByRole('row')[1].textContent).toBe('Blob reviews' + '421');
    expect(screen.getByText(/A collection is running\./)).toBeTruthy();
    expect(screen.getByText(/deleted 3 manifests, 5 blobs and freed 12 MB/)).toBeTruthy();
    const runs = within(screen.getByRole('table', { name: 'Collections asked for, newest first' })).getAllByRole('row');
    expect(runs.map((r) => r.textContent)).toEqual([
      'StartedAsked byOutcomeDeletedFreedFinished',
      '2026-12-07 10:00 UTCrootdone2 blobs3.0 MB2026-12-07 10:01 UTC',
      '2026-12-07 09:00 UTCwi$nightly workload identityfailed: the store is down——2026-12-07 10:01 UTC',
    ]);
  });

  it("shows the collector's dry run, and collects only after confirming, saying what it freed", async () => {
    let collected = false;
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/gc/status': () => ({ json: gcStatus({ runs: collected ? [RUN] : [] }) }),
      'GET /admin/v1/gc/dry-run': {
        json: { generatedAt: '2026-12-07T10:00:00Z', items: [{ kind: 'blob', action: 'delete', target: 'sha256:abc', size: 2_000_000, reason: 'no manifest refers to it' }], totals: { tags: 0, manifests: 0, blobs: 1, bytes: 2_000_000, uploads: 0, kept: 0, later: 0 } },
      },
      'POST /admin/v1/gc/collect': () => {
        collected = true;
        return { json: { deleted: { blobs: 1, manifests: 0 }, bytesFreed: 2_000_000, storageErrors: 0 } };
      },
    });
    renderWithSession(server, <CollectorSection />);
    expect(await screen.findByText('no manifest refers to it')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Collect now' }));
    expect(server.sent('POST')).toHaveLength(0);
    fireEvent.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Collect now' }));
    expect(await screen.findByText('The collection finished: deleted 1 blobs, 2.0 MB freed.')).toBeTruthy();
    expect(await screen.findByRole('rowheader', { name: '2026-12-07 10:00 UTC' })).toBeTruthy();
  });
});
