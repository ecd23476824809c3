import { OciError } from './errors';
import { MAX_NAME_LENGTH, assertRepositoryName, isValidRepositoryName, isValidTag, namespaceOf } from './reference';

describe('repository name grammar', () => {
  it.each([
    'app',
    'team/app',
    'a/b/c/d',
    'my.app',
    'my_app',
    'my__app',
    'my-app',
    'my--app',
    'my---app',
    'a0/b1.c2_d3__e4-f5',
    '0',
    'library/ubuntu',
  ])('accepts %s', (name) => {
    expect(isValidRepositoryName(name)).toBe(true);
    expect(() => assertRepositoryName(name)).not.toThrow();
  });

  it.each([
    ['uppercase letters', 'Team/app'],
    ['a leading separator', '-app'],
    ['a trailing separator', 'app-'],
    ['a leading dot', '.app'],
    ['a trailing dot', 'app.'],
    ['a leading underscore', '_app'],
    ['three underscores', 'my___app'],
    ['two dots', 'my..app'],
    ['a dot then a dash', 'my.-app'],
    ['two slashes', 'team//app'],
    ['a leading slash', '/app'],
    ['a trailing slash', 'app/'],
    ['an encoded slash', 'team%2Fapp'],
    ['an empty name', ''],
    ['a colon', 'app:latest'],
    ['a space', 'my app'],
    ['a component that is only a separator', 'team/-/app'],
  ])('refuses %s', (_what, name) => {
    expect(isValidRepositoryName(name)).toBe(false);
  });

  it('accepts a name of exactly 255 characters and refuses one of 256', () => {
    const exactly = `${'a'.repeat(127)}/${'b'.repeat(127)}`;
    expect(exactly).toHaveLength(MAX_NAME_LENGTH);
    expect(isValidRepositoryName(exactly)).toBe(true);
    expect(isValidRepositoryName(`${exactly}c`)).toBe(false);
    expect(isValidRepositoryName('a'.repeat(256))).toBe(false);
  });

  it('throws NAME_INVALID (400) for a bad name, with the name in the detail', () => {
    let thrown: unknown;
    try {
      assertRepositoryName('Bad/Name');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(OciError);
    expect((thrown as OciError).code).toBe('NAME_INVALID');
    expect((thrown as OciError).status).toBe(400);
    expect((thrown as OciError).detail).toEqual({ name: 'Bad/Name' });
  });
});

describe('tag grammar', () => {
  it.each(['latest', 'v1.0.0', 'V1', '_private', '1', 'a-b_c.d', 'A'.repeat(128)])('accepts %s', (tag) => {
    expect(isValidTag(tag)).toBe(true);
  });

  it('accepts 128 characters and refuses 129', () => {
    expect(isValidTag('a'.repeat(128))).toBe(true);
    expect(isValidTag('a'.repeat(129))).toBe(false);
  });

  it.each([
    ['a leading dot', '.hidden'],
    ['a leading dash', '-v1'],
    ['the empty string', ''],
    ['a colon', 'v1:2'],
    ['a slash', 'v1/2'],
    ['a plus', 'v1+build'],
    ['a space', 'v 1'],
  ])('refuses %s', (_what, tag) => {
    expect(isValidTag(tag)).toBe(false);
  });
});

describe('namespaceOf', () => {
  it('is everything before the last component, or empty for a top-level name', () => {
    expect(namespaceOf('a/b/c')).toBe('a/b');
    expect(namespaceOf('team/app')).toBe('team');
    expect(namespaceOf('app')).toBe('');
  });
});
