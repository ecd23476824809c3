import { LruCache } from './lru-cache';

describe('LruCache', () => {
  it('evicts the least recently used entries once their bytes pass the bound', () => {
    const cache = new LruCache<string, string>({ maxBytes: 3 * (100 + 64) });
    cache.set('a', 'A', 100);
    cache.set('b', 'B', 100);
    cache.set('c', 'C', 100);
    expect(cache.get('a')).toBe('A'); // a is now the youngest
    cache.set('d', 'D', 100);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual(['A', 'C', 'D']);
    expect(cache.weight).toBeLessThanOrEqual(3 * 164);
  });

  it('does not keep a value larger than the whole cache, and a bound of 0 keeps nothing', () => {
    const cache = new LruCache<string, string>({ maxBytes: 1000 });
    cache.set('big', 'x', 2000);
    expect(cache.get('big')).toBeUndefined();
    const off = new LruCache<string, string>({ maxBytes: 0 });
    off.set('a', 'A', 1);
    expect(off.get('a')).toBeUndefined();
    expect(off.size).toBe(0);
  });

  it('bounded by count, evicts the least recently used entries past maxEntries whatever they weigh', () => {
    const cache = new LruCache<string, string>({ maxEntries: 2 });
    cache.set('a', 'A');
    cache.set('b', 'B', 1_000_000);
    expect(cache.get('a')).toBe('A'); // a is now the youngest
    cache.set('c', 'C');
    expect(cache.size).toBe(2);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual(['A', undefined, 'C']);
    // Replacing an entry does not count it twice.
    cache.set('c', 'C2');
    expect([cache.size, cache.get('a'), cache.get('c')]).toEqual([2, 'A', 'C2']);
  });

  it('with both bounds, evicts when either is passed, and a count of 0 keeps nothing', () => {
    const cache = new LruCache<string, string>({ maxBytes: 2 * (100 + 64), maxEntries: 3 });
    cache.set('a', 'A', 100);
    cache.set('b', 'B', 100);
    cache.set('c', 'C', 100);
    expect([cache.size, cache.get('a')]).toEqual([2, undefined]);
    const few = new LruCache<string, string>({ maxBytes: 10_000, maxEntries: 2 });
    for (const key of ['a', 'b', 'c']) few.set(key, key.toUpperCase(), 1);
    expect([few.size, few.get('a'), few.get('c')]).toEqual([2, undefined, 'C']);
    const off = new LruCache<string, string>({ maxEntries: 0 });
    off.set('a', 'A');
    expect([off.size, off.get('a')]).toEqual([0, undefined]);
  });

  it('never returns an entry past its time to live', () => {
    let now = 1000;
    const cache = new LruCache<string, string>({ maxBytes: 10_000, ttlMs: 50, now: () => now });
    cache.set('t', 'v1', 10);
    now += 49;
    expect(cache.get('t')).toBe('v1');
    now += 1;
    expect(cache.get('t')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('replaces an entry under the same key and keeps the weight exact', () => {
    const cache = new LruCache<string, string>({ maxBytes: 10_000 });
    cache.set('k', 'one', 10);
    cache.set('k', 'two', 20);
    expect(cache.get('k')).toBe('two');
    expect(cache.weight).toBe(20 + 64);
    expect(cache.delete('k')).toBe(true);
    expect(cache.weight).toBe(0);
    expect(cache.delete('k')).toBe(false);
  });

  it('drops the entries a predicate selects', () => {
    const cache = new LruCache<string, string>({ maxBytes: 10_000 });
    cache.set('r/a:v1', 'sha256:1', 1);
    cache.set('r/a:v2', 'sha256:2', 1);
    cache.set('r/b:v1', 'sha256:1', 1);
    expect(cache.deleteWhere((key, value) => key.startsWith('r/a:') && value === 'sha256:1')).toBe(1);
    expect([cache.get('r/a:v1'), cache.get('r/a:v2'), cache.get('r/b:v1')]).toEqual([undefined, 'sha256:2', 'sha256:1']);
  });
});
