import { databaseEngines } from '@lading/testing';
import {
  LoginLimit,
  addGrant,
  createAccessToken,
  createUser,
  findAccessToken,
  findUser,
  grantsFor,
  insertRefreshToken,
  releaseLoginAttempt,
  reserveLoginAttempt,
  rotateRefreshToken,
  setAccessTokenGroups,
  setUserDisabled,
  upsertNamespace,
  upsertDirectoryUser,
} from './auth-store';
import type { Database } from './database';
import { migrate } from './migrate';

const WINDOW_MS = 15 * 60_000;
const inAnHour = () => new Date(Date.now() + 3_600_000);

/** The same checks on PGlite (embedded) and on a real PostgreSQL with a pool of connections (replicas). */
describe.each(databaseEngines('authstore'))('auth store on %s', (_name, open) => {
  let db: Database;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    ({ db, drop } = await open());
    await migrate(db);
  });
  afterAll(async () => {
    await db.close();
    await drop();
  });

  it('admits exactly `limit` of many concurrent login attempts on one counter, and refuses the rest with a Retry-After', async () => {
    const limits: LoginLimit[] = [
      { key: 'pair:race@1', limit: 10 },
      { key: 'addr:race', limit: 30 },
      { key: 'account:race', limit: 100 },
    ];
    const outcomes = await Promise.all(Array.from({ length: 60 }, () => reserveLoginAttempt(db, limits, WINDOW_MS)));
    expect(outcomes.filter((o) => o.admitted)).toHaveLength(10);
    for (const refused of outcomes.filter((o) => !o.admitted)) expect(refused).toEqual({ admitted: false, retryAfterSeconds: expect.any(Number) });
    // A refused attempt counts nowhere: the other counters hold the admitted ones only.
    const rows = (await db.query<{ key: string; failures: number }>(`SELECT key, failures FROM login_failures WHERE key LIKE '%race%' ORDER BY key`)).rows;
    expect(rows).toEqual([
      { key: 'account:race', failures: 10 },
      { key: 'addr:race', failures: 10 },
      { key: 'pair:race@1', failures: 10 },
    ]);
    await releaseLoginAttempt(db, ['pair:race@1']);
    expect((await reserveLoginAttempt(db, limits, WINDOW_MS)).admitted).toBe(true);
  });

  it('counts the grants of any of the given groups, and none of a group not given', async () => {
    await upsertNamespace(db, 'grp', false);
    expect(await addGrant(db, 'grp', 'group', 'Platform Team', 'pull')).toBe(true);
    expect(await addGrant(db, 'grp', 'group', 'writers', 'push')).toBe(true);
    const roles = async (groups: string[]) => (await grantsFor(db, 'grp/app', 'user', 'gus', groups)).map((g) => g.role).filter(Boolean).sort();
    expect(await roles([])).toEqual([]);
    expect(await roles(['Platform Team'])).toEqual(['pull']);
    expect(await roles(['platform team', 'nobody'])).toEqual([]);
    expect(await roles(['Platform Team', 'writers'])).toEqual(['pull', 'push']);
  });

  it('makes a directory user row at first sign-in, and never takes over a local user of the same name', async () => {
    const made = await upsertDirectoryUser(db, 'dora');
    expect(made).toMatchObject({ name: 'dora', source: 'ldap', passwordHash: '!' });
    expect(await upsertDirectoryUser(db, 'dora')).toEqual(made);
    expect(await createUser(db, 'lou', 'local-hash', false)).toBe(true);
    expect(await upsertDirectoryUser(db, 'lou')).toBeNull();
    expect((await findUser(db, 'lou'))?.passwordHash).toBe('local-hash');
  });

  it('keeps the groups of a sign-in with its refresh token, and hands them to the successor', async () => {
    const user = (await upsertDirectoryUser(db, 'gwen'))!;
    const holder = { principalType: 'user' as const, principalName: 'gwen', credential: { kind: 'password' as const, userId: user.id, passwordVersion: user.passwordVersion }, rotating: true, groups: ['devs', 'platform'] };
    await insertRefreshToken(db, 'g-first', holder, 'family-g', inAnHour());
    expect(await rotateRefreshToken(db, 'g-first', 'g-second', inAnHour())).toEqual({ status: 'valid', holder, isAdmin: false, rotated: true });
    expect(await rotateRefreshToken(db, 'g-second', 'g-third', inAnHour())).toEqual({ status: 'valid', holder, isAdmin: false, rotated: true });
  });

  it('uses a refresh token once: of concurrent uses exactly one rotates it, the others find it retired and revoke its family', async () => {
    expect(await createUser(db, 'rita', 'not-a-real-hash', false)).toBe(true);
    const user = (await findUser(db, 'rita'))!;
    const holder = { principalType: 'user' as const, principalName: 'rita', credential: { kind: 'password' as const, userId: user.id, passwordVersion: user.passwordVersion }, rotating: true };
    await insertRefreshToken(db, 'first', holder, 'family-1', inAnHour());
    const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => rotateRefreshToken(db, 'first', `next-${i}`, inAnHour())));
    expect(outcomes.filter((o) => o.status === 'valid')).toEqual([{ status: 'valid', holder, isAdmin: false, rotated: true }]);
    expect(outcomes.filter((o) => o.status === 'replayed')).toHaveLength(7);
    // The replays revoked the family, the token that the one winner got included.
    const winner = outcomes.findIndex((o) => o.status === 'valid');
    expect(await rotateRefreshToken(db, `next-${winner}`, 'after', inAnHour())).toEqual({ status: 'invalid' });
  });

  it('binds a refresh token to a personal access token: revoking the token ends it', async () => {
    expect(await createAccessToken(db, 'rita', 'laptop', 'pat-digest', null)).toBe(true);
    const pat = (await findAccessToken(db, 'pat-digest'))!;
    const holder = { principalType: 'user' as const, principalName: 'rita', credential: { kind: 'pat' as const, userId: pat.userId, accessTokenId: pat.tokenId }, rotating: true };
    await insertRefreshToken(db, 'by-pat', holder, 'family-2', inAnHour());
    expect(await rotateRefreshToken(db, 'by-pat', 'by-pat-2', inAnHour())).toMatchObject({ status: 'valid', holder, rotated: true });
    await db.query(`UPDATE access_tokens SET revoked_at = now() WHERE id = $1`, [pat.tokenId]);
    expect(await rotateRefreshToken(db, 'by-pat-2', 'by-pat-3', inAnHour())).toEqual({ status: 'invalid' });
  });

  it("keeps a personal access token's groups until their bound, and gives a refresh token bound to it the token's groups of the moment", async () => {
    expect(await createUser(db, 'gus', 'hash', false)).toBe(true);
    expect(await createAccessToken(db, 'gus', 'cli', 'pat-gus', inAnHour())).toBe(true);
    expect((await findAccessToken(db, 'pat-gus'))!.groups).toEqual([]);
    expect(await setAccessTokenGroups(db, 'gus', 'cli', ['devs', 'ops'], inAnHour())).toBe(true);
    expect(await setAccessTokenGroups(db, 'gus', 'no-such-token', ['devs'], inAnHour())).toBe(false);
    const pat = (await findAccessToken(db, 'pat-gus'))!;
    expect(pat.groups).toEqual(['devs', 'ops']);
    // A Docker identity token made with the token stored no groups of its own: it reads the token's at each use.
    const holder = { principalType: 'user' as const, principalName: 'gus', credential: { kind: 'pat' as const, userId: pat.userId, accessTokenId: pat.tokenId }, rotating: false };
    await insertRefreshToken(db, 'gus-identity', holder, 'family-gus', inAnHour());
    expect(await rotateRefreshToken(db, 'gus-identity', 'unused', inAnHour())).toMatchObject({ status: 'valid', holder: { groups: ['devs', 'ops'] } });
    // The row that keeps them is no refresh token anyone can present.
    expect(await rotateRefreshToken(db, `pat-groups:${pat.tokenId}`, 'unused', inAnHour())).toEqual({ status: 'invalid' });
    // Past their bound the token works with no groups, and so does what was made with it.
    await setAccessTokenGroups(db, 'gus', 'cli', ['devs', 'ops'], new Date(Date.now() - 1000));
    expect((await findAccessToken(db, 'pat-gus'))!.groups).toEqual([]);
    expect((await rotateRefreshToken(db, 'gus-identity', 'unused', inAnHour())) as { holder: { groups?: string[] } }).toMatchObject({ status: 'valid', holder: expect.not.objectContaining({ groups: expect.anything() }) });
    // Disabling the user drops them for good (a sign-in brings them back).
    await setAccessTokenGroups(db, 'gus', 'cli', ['devs'], inAnHour());
    await setUserDisabled(db, 'gus', true);
    await setUserDisabled(db, 'gus', false);
    expect((await findAccessToken(db, 'pat-gus'))!.groups).toEqual([]);
  });

  it("keeps a Docker identity token (not rotating) as it is on every use, until its credential dies", async () => {
    const user = (await findUser(db, 'rita'))!;
    const holder = { principalType: 'user' as const, principalName: 'rita', credential: { kind: 'password' as const, userId: user.id, passwordVersion: user.passwordVersion }, rotating: false };
    await insertRefreshToken(db, 'identity', holder, 'family-3', inAnHour());
    for (let i = 0; i < 3; i++) expect(await rotateRefreshToken(db, 'identity', `unused-${i}`, inAnHour())).toEqual({ status: 'valid', holder, isAdmin: false, rotated: false });
    expect((await db.query(`SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = 'family-3'`)).rows).toEqual([{ n: 1 }]);
    await db.query(`UPDATE users SET password_version = password_version + 1 WHERE id = $1`, [user.id]);
    expect(await rotateRefreshToken(db, 'identity', 'unused', inAnHour())).toEqual({ status: 'invalid' });
  });
});
