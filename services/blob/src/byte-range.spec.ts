import { parseContentRange, parseRangeHeader } from './byte-range';

const SIZE = 10_000;

describe('parseRangeHeader (RFC 9110 byte ranges)', () => {
  it.each<[string, number, number]>([
    ['bytes=500-1499', 500, 1499],
    ['bytes=0-0', 0, 0],
    ['bytes=0-9999', 0, 9999],
    ['bytes=9999-9999', 9999, 9999],
    ['bytes=500-', 500, 9999],
    ['bytes=0-', 0, 9999],
    ['bytes=-500', 9500, 9999],
    ['bytes=-1', 9999, 9999],
    ['bytes=500-20000', 500, 9999],
    ['bytes=-20000', 0, 9999],
    [' bytes=1-2 ', 1, 2],
  ])('serves %s of a 10000-byte blob as %i-%i', (header, start, end) => {
    expect(parseRangeHeader(header, SIZE)).toEqual({ kind: 'partial', range: { start, end } });
  });

  it.each([
    ['an end before the start', 'bytes=500-0'],
    ['a start at the size', 'bytes=10000-'],
    ['a start past the size', 'bytes=20000-30000'],
    ['a zero-length suffix', 'bytes=-0'],
  ])('answers %s as unsatisfiable', (_what, header) => {
    expect(parseRangeHeader(header, SIZE)).toEqual({ kind: 'unsatisfiable' });
  });

  it('answers any range of an empty blob as unsatisfiable', () => {
    expect(parseRangeHeader('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRangeHeader('bytes=-5', 0)).toEqual({ kind: 'unsatisfiable' });
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['bytes=-', 'bytes=-'],
    ['another unit', 'items=0-5'],
    ['a missing unit', '0-5'],
    ['letters', 'bytes=a-b'],
    ['a negative start', 'bytes=--5'],
    ['a space inside the range', 'bytes=1 - 2'],
    ['several ranges', 'bytes=0-1,5-6'],
    ['several ranges with a suffix', 'bytes=0-1, -5'],
  ])('serves the whole blob for %s', (_what, header) => {
    expect(parseRangeHeader(header, SIZE)).toEqual({ kind: 'full' });
  });
});

describe('parseContentRange', () => {
  it('is null when the header is absent', () => {
    expect(parseContentRange(undefined)).toBeNull();
  });

  it.each<[string, number, number]>([
    ['0-999', 0, 999],
    ['1000-1999', 1000, 1999],
    ['5-5', 5, 5],
    ['bytes 0-999/2000', 0, 999],
    ['bytes=0-999', 0, 999],
    ['0-999/*', 0, 999],
    [' 10-20 ', 10, 20],
  ])('parses %j as %i-%i', (header, start, end) => {
    expect(parseContentRange(header)).toEqual({ start, end });
  });

  it.each(['', 'abc', '999-0', '-5', '5-', '1-2-3', 'bytes 0-1/x', '1234567890123456-1234567890123457', '0x1-0x2'])('reports %j as invalid', (header) => {
    expect(parseContentRange(header)).toBe('invalid');
  });
});
