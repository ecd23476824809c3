/**
 * @jest-environment jsdom
 */
import { fireEvent, screen, waitFor, within } from '@testing-library/preact';
import { ADMIN, fakeServer } from '../../../test/fake-server';
import { renderApp } from '../../../test/render';
import type { AuditEntry } from './audit';

const request = { id: 'r1', addr: '203.0.113.9', method: 'POST', useragent: 'curl' };
const LOGIN: AuditEntry = {
  id: 1,
  eventId: 'e1',
  time: '2026-12-07T10:00:00Z',
  type: 'io.lading.audit.login',
  actor: 'alice',
  repository: null,
  record: { actor: { type: 'user', name: 'alice' }, result: 'failure', reason: 'invalid', method: 'password', request },
};
const CHANGE: AuditEntry = {
  id: 2,
  eventId: 'e2',
  time: '2026-12-07T10:05:00Z',
  type: 'io.lading.audit.admin',
  actor: 'root',
  repository: null,
  record: { action: 'POST /admin/v1/webhooks', target: 'webhooks', status: 201, before: null, after: { request: { secret: '[redacted]' } }, request },
};
const PULLS: AuditEntry = {
  id: 3,
  eventId: 'e3',
  time: '2026-12-07T11:00:00Z',
  type: 'io.lading.audit.pulls',
  actor: 'wi$deploy',
  repository: 'team/app',
  record: { windowStart: '2026-12-07T10:59:50Z', windowEnd: '2026-12-07T11:00:00Z', actor: { type: 'user', name: 'wi$deploy' }, repository: 'team/app', count: 4 },
};

describe('the audit log admin section', () => {
  it('lists the last 24 hours newest first by default: who, what and from where, a workload identity named as one', async () => {
    const server = fakeServer(ADMIN, { 'GET /admin/v1/audit?since=24h&order=newest&n=50': { json: { entries: [LOGIN, CHANGE, PULLS], next: null } } });
    renderApp(server, '/ui/admin/audit');
    const rows = within(await screen.findByRole('table')).getAllByRole('row');
    expect(rows.slice(1).map((r) => r.textContent)).toEqual([
      expect.stringContaining('loginalice—failed with a password from 203.0.113.9'),
      expect.stringContaining('admin changeroot—POST /admin/v1/webhooks (webhooks) answered 201 from 203.0.113.9'),
      expect.stringContaining('pullswi$deploy workload identityteam/app4 manifest pulls between 2026-12-07 10:59 UTC and 2026-12-07 11:00 UTC'),
    ]);
    expect(screen.getByText('Entries 1 to 3, newest first.')).toBeTruthy();
    expect((screen.getByRole('button', { name: 'Next page' }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('sends the filters the form holds, and only when it is submitted', async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/audit?since=24h&order=newest&n=50': { json: { entries: [], next: null } },
      'GET /admin/v1/audit?since=7d&actor=robot%24ci&repository=team%2Fapp&type=io.lading.audit.pulls&order=newest&n=50': { json: { entries: [PULLS], next: null } },
    });
    renderApp(server, '/ui/admin/audit');
    await screen.findByText('No entries match.');
    fireEvent.change(screen.getByLabelText('Period'), { target: { value: '7d' } });
    fireEvent.change(screen.getByLabelText('Type'), { target: { value: 'io.lading.audit.pulls' } });
    fireEvent.input(screen.getByLabelText('Actor'), { target: { value: 'robot$ci ' } });
    fireEvent.input(screen.getByLabelText('Repository'), { target: { value: 'team/app' } });
    expect(server.sent()).toHaveLength(1);
    fireEvent.click(screen.getByRole('button', { name: 'Show entries' }));
    expect(await screen.findByRole('rowheader', { name: '2026-12-07 11:00 UTC' })).toBeTruthy();
  });

  it('asks for a period between two times in UTC', async () => {
    const server = fakeServer(ADMIN, { 'GET /admin/v1/audit?since=24h&order=newest&n=50': { json: { entries: [], next: null } } });
    renderApp(server, '/ui/admin/audit');
    fireEvent.change(await screen.findByLabelText('Period'), { target: { value: 'between' } });
    fireEvent.input(screen.getByLabelText('From (your local time)'), { target: { value: '2026-12-01T00:00' } });
    fireEvent.input(screen.getByLabelText('Until (your local time)'), { target: { value: '2026-12-02T00:00' } });
    fireEvent.click(screen.getByRole('button', { name: 'Show entries' }));
    const since = new Date('2026-12-01T00:00').toISOString();
    const until = new Date('2026-12-02T00:00').toISOString();
    await waitFor(() => expect(server.sent().map((r) => new URLSearchParams(r.path.split('?')[1]).get('since'))).toContain(since));
    expect(new URLSearchParams(server.sent()[1].path.split('?')[1]).get('until')).toBe(until);
  });

  it('pages forward with the cursor the server gave and back again, and opens an entry’s record', async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/audit?since=24h&order=newest&n=50': { json: { entries: [LOGIN], next: 'cursor-1' } },
      'GET /admin/v1/audit?since=24h&order=newest&n=50&last=cursor-1': { json: { entries: [CHANGE], next: null } },
    });
    renderApp(server, '/ui/admin/audit');
    await screen.findByText('Entries 1 to 1, newest first.');
    fireEvent.click(screen.getByRole('button', { name: 'Next page' }));
    await screen.findByText('Entries 51 to 51, newest first.');
    const show = screen.getByRole('button', { name: 'Show the record of 2026-12-07 10:05 UTC' });
    fireEvent.click(show);
    expect(show.getAttribute('aria-expanded')).toBe('true');
    expect(within(screen.getByRole('region', { name: 'The record of 2026-12-07 10:05 UTC' })).getByText(/"\[redacted\]"/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Previous page' }));
    await screen.findByText('Entries 1 to 1, newest first.');
    expect(server.sent().map((r) => r.path)).toEqual(['/admin/v1/audit?since=24h&order=newest&n=50', '/admin/v1/audit?since=24h&order=newest&n=50&last=cursor-1', '/admin/v1/audit?since=24h&order=newest&n=50']);
  });

  it('shows the filters of the URL it is opened at (a reload, a shared link), and asks for them', async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/audit?since=7d&actor=alice&type=io.lading.audit.login&order=oldest&n=50': { json: { entries: [LOGIN], next: null } },
    });
    renderApp(server, '/ui/admin/audit?period=7d&type=io.lading.audit.login&actor=alice&order=oldest');
    await screen.findByText('Entries 1 to 1, oldest first.');
    expect((screen.getByLabelText('Period') as HTMLSelectElement).value).toBe('7d');
    expect((screen.getByLabelText('Type') as HTMLSelectElement).value).toBe('io.lading.audit.login');
    expect((screen.getByLabelText('Actor') as HTMLInputElement).value).toBe('alice');
    expect((screen.getByLabelText('Order') as HTMLSelectElement).value).toBe('oldest');
    expect(server.sent().map((r) => r.path)).toEqual(['/admin/v1/audit?since=7d&actor=alice&type=io.lading.audit.login&order=oldest&n=50']);
  });

  it('puts the filters it shows in the URL, and back and forward show the filters of each step', async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/audit?since=24h&order=newest&n=50': { json: { entries: [LOGIN, CHANGE], next: null } },
      'GET /admin/v1/audit?since=24h&type=io.lading.audit.pulls&order=newest&n=50': { json: { entries: [PULLS], next: null } },
    });
    renderApp(server, '/ui/admin/audit');
    await screen.findByText('Entries 1 to 2, newest first.');
    fireEvent.change(screen.getByLabelText('Type'), { target: { value: 'io.lading.audit.pulls' } });
    fireEvent.click(screen.getByRole('button', { name: 'Show entries' }));
    await screen.findByText('Entries 1 to 1, newest first.');
    expect(location.pathname + location.search).toBe('/ui/admin/audit?type=io.lading.audit.pulls');
    history.back();
    await screen.findByText('Entries 1 to 2, newest first.');
    expect((screen.getByLabelText('Type') as HTMLSelectElement).value).toBe('');
    history.forward();
    await screen.findByText('Entries 1 to 1, newest first.');
    expect((screen.getByLabelText('Type') as HTMLSelectElement).value).toBe('io.lading.audit.pulls');
  });
});
