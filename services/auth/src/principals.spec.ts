import { PasswordHasher, hashPassword, verifyPassword } from '@lading/access';
import * as meta from '@lading/metadata';
import { TestDeps, createTestDeps } from '@lading/testing';
import { Authenticator, createAuthenticator, secretDigest } from './principals';

/**
 * Which usernames exist must not show in how long a login takes: the hashing work of a check depends only on the
 * shape of the credentials. Counted through the hasher, not timed.
 */
describe('authenticate', () => {
  let deps: TestDeps;
  let authenticator: Authenticator;
  let verifications: number;

  const hasher: PasswordHasher = {
    hash: hashPassword,
    verify: (password, encoded) => {
      verifications++;
      return verifyPassword(password, encoded);
    },
  };

  /** The number of argon2id verifications one check costs, and what it answered. */
  async function cost(username: string, password: string): Promise<{ verifications: number; principal: string | null }> {
    verifications = 0;
    const principal = await authenticator.authenticate(username, password);
    return { verifications, principal: principal?.name ?? null };
  }

  beforeAll(async () => {
    deps = await createTestDeps({ auth: { enabled: true } });
    authenticator = createAuthenticator(deps.db, hasher);
    await meta.createUser(deps.db, 'alice', await hashPassword('alice-password'), false);
    await meta.createUser(deps.db, 'dora', await hashPassword('dora-password'), false);
    await meta.setUserDisabled(deps.db, 'dora', true);
    await meta.createRobot(deps.db, 'ci', await hashPassword('lrs_ci-secret'), null, 'root');
    await meta.createRobot(deps.db, 'gone', await hashPassword('lrs_gone-secret'), null, 'root');
    await meta.revokeRobot(deps.db, 'gone');
    await meta.createRobot(deps.db, 'old', await hashPassword('lrs_old-secret'), new Date(Date.now() - 1000), 'root');
    await meta.createAccessToken(deps.db, 'alice', 'laptop', secretDigest('lpat_alice-token'), null);
    await meta.createAccessToken(deps.db, 'dora', 'laptop', secretDigest('lpat_dora-token'), null);
    // The dummy hash is made once, on first use: make it now, so that every case below counts only verifications.
    await authenticator.authenticate('nobody', 'warm-up');
  });
  afterAll(async () => deps.close());

  it('costs one argon2id verification for a password, whether the user exists, is disabled, or the password is right', async () => {
    expect(await cost('alice', 'alice-password')).toEqual({ verifications: 1, principal: 'alice' });
    expect(await cost('alice', 'wrong-password')).toEqual({ verifications: 1, principal: null });
    expect(await cost('nobody', 'any-password')).toEqual({ verifications: 1, principal: null });
    expect(await cost('dora', 'dora-password')).toEqual({ verifications: 1, principal: null });
  });

  it('costs one argon2id verification for a robot secret, whether the robot exists, is revoked or expired', async () => {
    expect(await cost('robot$ci', 'lrs_ci-secret')).toEqual({ verifications: 1, principal: 'robot$ci' });
    expect(await cost('robot$ci', 'lrs_wrong')).toEqual({ verifications: 1, principal: null });
    expect(await cost('robot$nobody', 'lrs_whatever')).toEqual({ verifications: 1, principal: null });
    expect(await cost('robot$gone', 'lrs_gone-secret')).toEqual({ verifications: 1, principal: null });
    expect(await cost('robot$old', 'lrs_old-secret')).toEqual({ verifications: 1, principal: null });
  });

  it('costs no argon2id verification for a personal access token, for every user alike', async () => {
    expect(await cost('alice', 'lpat_alice-token')).toEqual({ verifications: 0, principal: 'alice' });
    expect(await cost('alice', 'lpat_not-a-token')).toEqual({ verifications: 0, principal: null });
    expect(await cost('nobody', 'lpat_alice-token')).toEqual({ verifications: 0, principal: null });
    expect(await cost('nobody', 'lpat_not-a-token')).toEqual({ verifications: 0, principal: null });
    expect(await cost('dora', 'lpat_dora-token')).toEqual({ verifications: 0, principal: null });
  });

  it('checks an unknown account against a real argon2id hash with the parameters of a stored one', async () => {
    const seen: string[] = [];
    const spy = createAuthenticator(deps.db, { hash: hashPassword, verify: async (password, encoded) => (seen.push(encoded), verifyPassword(password, encoded)) });
    await spy.authenticate('nobody', 'x');
    await spy.authenticate('alice', 'x');
    const params = (encoded: string) => encoded.split('$').slice(1, 4).join('$');
    expect(seen).toHaveLength(2);
    expect(params(seen[0])).toBe(params(seen[1]));
    expect(params(seen[0])).toBe('argon2id$v=19$m=19456,t=2,p=1');
  });
});
