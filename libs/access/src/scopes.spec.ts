import { OciError } from '@lading/oci';
import { Access, formatScope, grants, parseScope, parseScopes } from './scopes';

describe('parseScope', () => {
  it.each<[string, Access | null]>([
    ['repository:team/app:pull', { type: 'repository', name: 'team/app', actions: ['pull'] }],
    ['repository:team/app:pull,push', { type: 'repository', name: 'team/app', actions: ['pull', 'push'] }],
    ['repository:team/app:push,pull,push', { type: 'repository', name: 'team/app', actions: ['push', 'pull'] }],
    ['repository:team/app: pull , delete ', { type: 'repository', name: 'team/app', actions: ['pull', 'delete'] }],
    ['repository:a/b/c/d:*', { type: 'repository', name: 'a/b/c/d', actions: ['*'] }],
    // The actions are after the last colon: a name with a registry host and port keeps its colon.
    ['repository:localhost:5000/app:pull', { type: 'repository', name: 'localhost:5000/app', actions: ['pull'] }],
    ['registry:catalog:*', { type: 'registry', name: 'catalog', actions: ['*'] }],
    ['registry:catalog:pull,*', { type: 'registry', name: 'catalog', actions: ['*'] }],
    // Catalog access is all or nothing: any other action asks for nothing.
    ['registry:catalog:pull', { type: 'registry', name: 'catalog', actions: [] }],
  ])('parses %s', (scope, expected) => {
    expect(parseScope(scope)).toEqual(expected);
  });

  it.each(['', 'repository', 'repository:team/app', 'repository::pull', 'repository:team/app:', 'repository:team/app:,,', 'registry:other:*', 'plugin:x:pull', 'Repository:team/app:pull', ':team/app:pull'])(
    'drops %j (malformed or of an unknown type) instead of failing',
    (scope) => {
      expect(parseScope(scope)).toBeNull();
    },
  );
});

describe('parseScopes', () => {
  it('reads repeated scope parameters and space-separated scopes, merging the actions per resource', () => {
    expect(
      parseScopes(['repository:team/app:pull', 'repository:team/app:push repository:other:pull', 'registry:catalog:*', 'garbage', 'repository:team/app:pull']),
    ).toEqual([
      { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'other', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
  });

  it.each([
    ['a U+0000 in the name', 'repository:a\u0000b:pull'],
    ['a U+0000 in the actions', 'repository:team/app:pu\u0000ll'],
    ['a line feed', 'repository:team/app:pull\nx'],
    ['a tab', 'repository:team/app:\tpull'],
    ['a non-ASCII name', 'repository:caf\u00e9:pull'],
    ['a lone surrogate', 'repository:\ud800:pull'],
    ['a DEL', 'repository:x\u007f:pull'],
  ])('refuses a scope with %s with a 400 (the name must never reach a query)', (_what, scope) => {
    let thrown: unknown;
    try {
      parseScopes(['repository:team/app:pull', scope]);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(OciError);
    expect({ code: (thrown as OciError).code, status: (thrown as OciError).status }).toEqual({ code: 'UNSUPPORTED', status: 400 });
  });

  it('asks for nothing when there are no scopes', () => {
    expect(parseScopes([])).toEqual([]);
    expect(parseScopes(['', '   '])).toEqual([]);
  });
});

describe('grants', () => {
  const access: Access[] = [
    { type: 'repository', name: 'team/app', actions: ['pull'] },
    { type: 'repository', name: 'team/admin', actions: ['*'] },
    { type: 'repository', name: 'team/refused', actions: [] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
  ];

  it('grants exactly the listed actions on exactly the named resource', () => {
    expect(grants(access, 'repository', 'team/app', 'pull')).toBe(true);
    expect(grants(access, 'repository', 'team/app', 'push')).toBe(false);
    expect(grants(access, 'repository', 'team/app', 'delete')).toBe(false);
    // No prefix or case games: a grant on team/app says nothing about its neighbours.
    expect(grants(access, 'repository', 'team/app/sub', 'pull')).toBe(false);
    expect(grants(access, 'repository', 'team', 'pull')).toBe(false);
    expect(grants(access, 'repository', 'Team/App', 'pull')).toBe(false);
    expect(grants(access, 'repository', 'team/refused', 'pull')).toBe(false);
  });

  it('treats * as every action, and keeps resource types apart', () => {
    for (const action of ['pull', 'push', 'delete']) expect(grants(access, 'repository', 'team/admin', action)).toBe(true);
    expect(grants(access, 'registry', 'catalog', '*')).toBe(true);
    expect(grants(access, 'repository', 'catalog', 'pull')).toBe(false);
    expect(grants(access, 'registry', 'team/admin', 'pull')).toBe(false);
    expect(grants([], 'repository', 'team/app', 'pull')).toBe(false);
  });
});

describe('formatScope', () => {
  it('writes the scope string a challenge names, which parses back to the same access', () => {
    const access: Access = { type: 'repository', name: 'team/app', actions: ['pull', 'push'] };
    expect(formatScope(access)).toBe('repository:team/app:pull,push');
    expect(parseScope(formatScope(access))).toEqual(access);
    expect(formatScope({ type: 'registry', name: 'catalog', actions: ['*'] })).toBe('registry:catalog:*');
  });
});
