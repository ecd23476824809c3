/**
 * @jest-environment jsdom
 */
import { fireEvent, screen, within } from '@testing-library/preact';
import { ADMIN, SIGNED_IN, fakeServer } from '../../test/fake-server';
import { renderWithSession } from '../../test/render';
import type { TagSummary } from '../types';
import { InsightsPage, pushesPerDay, quotaSummary, sizeByNamespace } from './insights';

const tag = (name: string, size: number, pushedAt: string): TagSummary => ({ tag: name, digest: 'sha256:x', mediaType: 'm', size, platforms: [], pushedAt, lastPulledAt: null });
const NOW = new Date('2026-12-07T12:00:00Z');

describe('the insights page', () => {
  it('adds up tag sizes per namespace, largest first', () => {
    const bars = sizeByNamespace({
      partial: false,
      repositories: [
        { name: 'team/a', tags: [tag('1', 100, '2026-12-07T00:00:00Z'), tag('2', 50, '2026-12-06T00:00:00Z')] },
        { name: 'team/b', tags: [tag('1', 10, '2026-12-07T00:00:00Z')] },
        { name: 'big/x/y', tags: [tag('1', 1000, '2026-11-01T00:00:00Z')] },
        { name: 'solo', tags: [tag('1', 1, '2026-12-01T00:00:00Z')] },
      ],
    });
    expect(bars).toEqual([
      { label: 'big/x', value: 1000 },
      { label: 'team', value: 160 },
      { label: '(top level)', value: 1 },
    ]);
  });

  it('counts tags pushed per UTC day over the last 30 days, every day present, older pushes left out', () => {
    const bars = pushesPerDay({ partial: false, repositories: [{ name: 'a', tags: [tag('1', 1, '2026-12-07T01:00:00Z'), tag('2', 1, '2026-12-07T23:00:00Z'), tag('3', 1, '2026-10-01T00:00:00Z')] }] }, NOW);
    expect(bars).toHaveLength(30);
    expect(bars[0].label).toBe('2026-11-08');
    expect(bars[29]).toEqual({ label: '2026-12-07', value: 2 });
    expect(bars.reduce((s, b) => s + b.value, 0)).toBe(2);
  });

  it('draws both charts as named images with their numbers in a table', async () => {
    const server = fakeServer(SIGNED_IN, {
      'GET /api/v1/repositories?n=100': { json: { repositories: [{ name: 'team/a', tagCount: 1, lastPushedAt: null }] } },
      'GET /api/v1/repositories/team/a/tags?n=100': { json: { name: 'team/a', tags: [tag('v1', 2_000_000, '2026-12-06T10:00:00Z')] } },
    });
    renderWithSession(server, <InsightsPage now={() => NOW} />);
    const sizes = await screen.findByRole('img', { name: 'Size of tagged images by namespace' });
    expect(sizes.getAttribute('aria-describedby')).toBe('namespace-sizes-desc');
    expect(screen.getByRole('img', { name: 'Tags pushed per day, last 30 days' })).toBeTruthy();
    const figure = sizes.closest('figure') as HTMLElement;
    fireEvent.click(within(figure).getByText('The numbers'));
    expect(within(figure).getByRole('rowheader', { name: 'team' }).closest('tr')?.textContent).toBe('team2.0 MB');
  });

  it("shows an admin what each namespace stores, against its quota", async () => {
    const server = fakeServer(ADMIN, {
      'GET /admin/v1/usage': { json: { namespaces: [{ prefix: 'small', quotaBytes: null, bytes: 1000 }, { prefix: 'team', quotaBytes: 10_000_000, bytes: 2_500_000 }] } },
      'GET /api/v1/repositories?n=100': { json: { repositories: [] } },
    });
    renderWithSession(server, <InsightsPage now={() => NOW} />);
    const chart = await screen.findByRole('img', { name: 'Storage per namespace' });
    expect(document.getElementById(chart.getAttribute('aria-describedby') ?? '')?.textContent).toContain('team uses 25% of 10 MB');
    const figure = chart.closest('figure') as HTMLElement;
    expect(within(figure).getAllByRole('rowheader').map((r) => r.textContent)).toEqual(['team', 'small']);
  });

  it('asks no usage of a user who is not an admin', async () => {
    const server = fakeServer(SIGNED_IN, { 'GET /api/v1/repositories?n=100': { json: { repositories: [] } } });
    renderWithSession(server, <InsightsPage now={() => NOW} />);
    await screen.findByText(/Over the 0 repositories/);
    expect(server.sent().map((r) => r.path)).not.toContain('/admin/v1/usage');
    expect(quotaSummary([{ prefix: 'a', quotaBytes: null, bytes: 1 }])).toBe('No namespace has a quota.');
  });
});
