import { OciError } from '@lading/oci';
import { nextPageLink, parsePageRequest } from './pagination';

function paginationError(query: Record<string, unknown>): OciError {
  try {
    parsePageRequest(query, 100);
  } catch (err) {
    return err as OciError;
  }
  throw new Error(`parsePageRequest accepted ${JSON.stringify(query)}`);
}

describe('parsePageRequest', () => {
  it('uses the maximum page size when n is absent', () => {
    expect(parsePageRequest({}, 100)).toEqual({ limit: 100, last: null });
  });

  it('honours n=0 as an empty page', () => {
    expect(parsePageRequest({ n: '0' }, 100)).toEqual({ limit: 0, last: null });
  });

  it('honours n up to the maximum and clamps a larger n to it', () => {
    expect(parsePageRequest({ n: '7' }, 100).limit).toBe(7);
    expect(parsePageRequest({ n: '100' }, 100).limit).toBe(100);
    expect(parsePageRequest({ n: '101' }, 100).limit).toBe(100);
    expect(parsePageRequest({ n: '999999999999' }, 100).limit).toBe(100);
    expect(parsePageRequest({ n: '123456789012345678901234567890' }, 100).limit).toBe(100);
  });

  it('passes last through, and treats an empty last as none', () => {
    expect(parsePageRequest({ n: '2', last: 'v1.0' }, 100)).toEqual({ limit: 2, last: 'v1.0' });
    expect(parsePageRequest({ last: '' }, 100).last).toBeNull();
  });

  it.each<[string, Record<string, unknown>]>([
    ['n=-1', { n: '-1' }],
    ['n=abc', { n: 'abc' }],
    ['n=1.5', { n: '1.5' }],
    ['n= 5', { n: ' 5' }],
    ['n=1e3', { n: '1e3' }],
    ['an empty n', { n: '' }],
    ['n given twice', { n: ['1', '2'] }],
    ['last given twice', { last: ['a', 'b'] }],
    ['n as a nested object', { n: { a: '1' } }],
    // What `last=%00` and `last=%ED%A0%80`-style input decode to: text no Postgres column can compare against.
    ['a last holding U+0000', { last: '\u0000' }],
    ['a last holding a lone surrogate', { n: '1', last: 'v1\ud800' }],
  ])('refuses %s with PAGINATION_NUMBER_INVALID (400)', (_what, query) => {
    const err = paginationError(query);
    expect(err).toBeInstanceOf(OciError);
    expect(err.code).toBe('PAGINATION_NUMBER_INVALID');
    expect(err.status).toBe(400);
  });
});

describe('nextPageLink', () => {
  it('points at the same path with n and the last entry, as rel="next"', () => {
    expect(nextPageLink('/v2/team/app/tags/list', 2, 'v1.1')).toBe('</v2/team/app/tags/list?n=2&last=v1.1>; rel="next"');
  });

  it('percent-encodes last', () => {
    expect(nextPageLink('/v2/_catalog', 10, 'team/app')).toBe('</v2/_catalog?n=10&last=team%2Fapp>; rel="next"');
    expect(nextPageLink('/v2/_catalog', 1, 'a&b=c d')).toBe('</v2/_catalog?n=1&last=a%26b%3Dc%20d>; rel="next"');
  });
});
