import { cachedDirectory } from './cached-directory';
import { type DirectoryClient, type DirectoryIdentity, DirectoryUnavailableError, escapeFilterValue, fillFilter } from './directory';

describe('LDAP filters', () => {
  it('escapes the filter metacharacters of RFC 4515 (backslash, star, parentheses, NUL) and nothing else', () => {
    expect(escapeFilterValue('*)(uid=*')).toBe('\\2a\\29\\28uid=\\2a');
    expect(escapeFilterValue('a\\b\u0000c')).toBe('a\\5cb\\00c');
    expect(escapeFilterValue('jörg.o-brien_1')).toBe('jörg.o-brien_1');
  });

  it('fills every placeholder with its escaped value and leaves unknown ones alone', () => {
    expect(fillFilter('(&(objectClass=person)(uid={username}))', { username: 'alice)(|(uid=*' })).toBe('(&(objectClass=person)(uid=alice\\29\\28|\\28uid=\\2a))');
    expect(fillFilter('(|(member={dn})(memberUid={username}))', { dn: 'uid=a,ou=people,dc=x', username: 'a' })).toBe('(|(member=uid=a,ou=people,dc=x)(memberUid=a))');
    expect(fillFilter('(cn={other})', { username: 'a' })).toBe('(cn={other})');
  });
});

describe('the directory cache', () => {
  const ALICE: DirectoryIdentity = { username: 'alice', dn: 'uid=alice', groups: ['devs'] };
  function fake(answers: Record<string, DirectoryIdentity | null | 'down'>) {
    const calls: string[] = [];
    const client: DirectoryClient = {
      async authenticate(username, password) {
        calls.push(username);
        const answer = answers[`${username}:${password}`] ?? null;
        if (answer === 'down') throw new DirectoryUnavailableError('connect ECONNREFUSED');
        return answer;
      },
    };
    return { client, calls, answers };
  }

  it('answers a success again from memory for cacheTtl, then asks the directory again', async () => {
    let clock = 0;
    const inner = fake({ 'alice:pw': ALICE });
    const cached = cachedDirectory(inner.client, { cacheTtlMs: 1000, negativeCacheTtlMs: 100, now: () => clock });
    expect(await cached.authenticate('alice', 'pw')).toEqual(ALICE);
    inner.answers['alice:pw'] = 'down';
    clock = 999;
    expect(await cached.authenticate('alice', 'pw')).toEqual(ALICE);
    clock = 1000;
    await expect(cached.authenticate('alice', 'pw')).rejects.toBeInstanceOf(DirectoryUnavailableError);
    expect(inner.calls).toEqual(['alice', 'alice']);
  });

  it('remembers a refusal for negativeCacheTtl, for that password only, and never remembers an outage', async () => {
    let clock = 0;
    const inner = fake({ 'alice:pw': ALICE, 'bob:pw': 'down' });
    const cached = cachedDirectory(inner.client, { cacheTtlMs: 1000, negativeCacheTtlMs: 100, now: () => clock });
    expect(await cached.authenticate('alice', 'wrong')).toBeNull();
    expect(await cached.authenticate('alice', 'wrong')).toBeNull();
    expect(await cached.authenticate('alice', 'pw')).toEqual(ALICE);
    clock = 100;
    expect(await cached.authenticate('alice', 'wrong')).toBeNull();
    await expect(cached.authenticate('bob', 'pw')).rejects.toBeInstanceOf(DirectoryUnavailableError);
    await expect(cached.authenticate('bob', 'pw')).rejects.toBeInstanceOf(DirectoryUnavailableError);
    expect(inner.calls).toEqual(['alice', 'alice', 'alice', 'bob', 'bob']);
  });

  it('asks every time when both lifetimes are zero', async () => {
    const inner = fake({ 'alice:pw': ALICE });
    const cached = cachedDirectory(inner.client, { cacheTtlMs: 0, negativeCacheTtlMs: 0, now: () => 0 });
    await cached.authenticate('alice', 'pw');
    await cached.authenticate('alice', 'pw');
    expect(inner.calls).toHaveLength(2);
  });
});
