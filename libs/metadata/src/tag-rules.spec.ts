import { immutableTagRule, isValidTagGlob, tagGlobMatches } from './tag-rules';

describe('tag globs', () => {
  it.each([
    ['v*', 'v1.2.3', true],
    ['v*', 'v', true],
    ['v*', 'release-1', false],
    ['release-?', 'release-1', true],
    ['release-?', 'release-10', false],
    ['*-rc*', '1.0-rc2', true],
    ['*', 'anything', true],
    ['latest', 'latest', true],
    ['latest', 'latest2', false],
    ['v*.*', 'v1', false],
    ['V*', 'v1', false],
  ])('matches %s against %s: %s', (glob, tag, expected) => {
    expect(tagGlobMatches(glob, tag)).toBe(expected);
  });

  it('takes linear-ish time on patterns of many stars that cannot match', () => {
    const started = Date.now();
    expect(tagGlobMatches('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(128))).toBe(false);
    expect(Date.now() - started).toBeLessThan(200);
  });

  it('accepts tag characters with * and ?, and refuses anything else', () => {
    expect(isValidTagGlob('release-*')).toBe(true);
    expect(isValidTagGlob('v?.*')).toBe(true);
    expect(isValidTagGlob('')).toBe(false);
    expect(isValidTagGlob('a/b')).toBe(false);
    expect(isValidTagGlob('[abc]')).toBe(false);
    expect(isValidTagGlob('x'.repeat(129))).toBe(false);
  });

  it('names the first rule that makes a tag immutable, and none when an exception of that namespace matches', () => {
    const rules = [
      { namespace: 'team', immutableTags: ['v*'], immutableTagExceptions: ['v*-dev'] },
      { namespace: 'team/ci', immutableTags: ['latest'], immutableTagExceptions: [] },
    ];
    expect(immutableTagRule(rules, 'v1')).toEqual({ namespace: 'team', pattern: 'v*' });
    expect(immutableTagRule(rules, 'v1-dev')).toBeNull();
    expect(immutableTagRule(rules, 'latest')).toEqual({ namespace: 'team/ci', pattern: 'latest' });
    expect(immutableTagRule(rules, 'main')).toBeNull();
  });
});
