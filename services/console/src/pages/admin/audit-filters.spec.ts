import { DEFAULT_AUDIT_FILTERS, auditFiltersOf, auditQuery, auditSearchOf, localToUtc, utcToLocal } from './audit-filters';

const filtersOf = (search: string) => auditFiltersOf(new URLSearchParams(search));

describe('the audit filters in the URL', () => {
  it('reads no query as the defaults, and writes the defaults as no query', () => {
    expect(filtersOf('')).toEqual(DEFAULT_AUDIT_FILTERS);
    expect(auditSearchOf(DEFAULT_AUDIT_FILTERS)).toBe('');
  });

  it('writes every filter and reads it back the same: period, type, actor, repository, namespace, order', () => {
    const filters = { ...DEFAULT_AUDIT_FILTERS, period: '7d', type: 'io.lading.audit.pulls', actor: 'robot$ci', repository: 'team/app', namespace: 'team', order: 'oldest' };
    const search = auditSearchOf(filters);
    expect(search).toBe('?period=7d&type=io.lading.audit.pulls&actor=robot%24ci&repository=team%2Fapp&namespace=team&order=oldest');
    expect(filtersOf(search)).toEqual(filters);
  });

  it('writes "everything kept" as period=all, not as an absent period (which is the last 24 hours)', () => {
    const everything = { ...DEFAULT_AUDIT_FILTERS, period: '' };
    expect(auditSearchOf(everything)).toBe('?period=all');
    expect(filtersOf('?period=all')).toEqual(everything);
  });

  it('writes the times of a period between two in UTC, and reads them back in local time to the minute', () => {
    const between = { ...DEFAULT_AUDIT_FILTERS, period: 'between', from: '2026-12-01T08:30', to: '' };
    const search = auditSearchOf(between);
    expect(new URLSearchParams(search).get('from')).toBe(new Date('2026-12-01T08:30').toISOString());
    expect(new URLSearchParams(search).has('to')).toBe(false);
    expect(filtersOf(search)).toEqual(between);
    expect(utcToLocal(localToUtc('2026-12-07T23:59'))).toBe('2026-12-07T23:59');
    // Times of another period are no filter of it.
    expect(filtersOf('?period=7d&from=2026-12-01T00:00:00Z').from).toBe('');
  });

  it('trims the text filters it writes', () => {
    expect(auditSearchOf({ ...DEFAULT_AUDIT_FILTERS, actor: ' alice ', repository: ' team/app' })).toBe('?actor=alice&repository=team%2Fapp');
  });

  it('falls back to the default for a value the page does not offer (a hand-edited link), never asking the API for it', () => {
    const odd = filtersOf('?period=forever&type=login&order=sideways&from=yesterday');
    expect(odd).toEqual(DEFAULT_AUDIT_FILTERS);
    expect(filtersOf('?period=between&from=yesterday').from).toBe('');
    expect(auditQuery(odd, null)).toBe('?since=24h&order=newest&n=50');
  });

  it('asks the API for the filters, newest first unless oldest is chosen, with the page cursor', () => {
    expect(auditQuery(filtersOf('?period=1h&actor=alice&order=oldest'), 'c1')).toBe('?since=1h&actor=alice&order=oldest&n=50&last=c1');
    expect(auditQuery(filtersOf('?period=all'), null)).toBe('?order=newest&n=50');
  });
});
