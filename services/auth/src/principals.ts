/**
 * Who is asking: turns the credentials of a token request (a user's password, a personal access token used as a
 * password, or a robot's secret) into a principal, or anonymous when there are none.
 *
 * Invariant: the hashing work of a check depends only on the shape of what was sent, never on whether the account
 * exists, is disabled, revoked or expired. A password or robot secret costs exactly one argon2id verification (a
 * dummy hash with the same parameters stands in for a missing account); a personal access token costs none, for
 * everyone. So the time an answer takes does not say which usernames exist. The exception is a directory
 * (`auth.ldap`): a name that is no local user's is sent to it, and its answer takes what it takes.
 *
 * Precedence: robots and personal access tokens first, then a local user by that name (its password is checked
 * here, never by the directory), then the directory; a directory user's row is made at its first sign-in
 * (source `ldap`, no password hash) and is never checked against a local password.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { PasswordHasher } from '@lading/access';
import * as meta from '@lading/metadata';
import type { RefreshCredential, SqlExecutor } from '@lading/metadata';
import { OciError } from '@lading/oci';
import { type DirectoryClient, DirectoryUnavailableError } from './directory';

/** An authenticated caller. */
export interface Principal {
  type: 'user' | 'robot' | 'anonymous';
  /** The token subject: the user's name, `robot$<name>`, or '' for anonymous. */
  name: string;
  isAdmin: boolean;
  /** The credential it proved itself with (absent for anonymous): refresh tokens are bound to it. */
  credential?: RefreshCredential;
  /** Groups the identity provider says the principal belongs to, as of its sign-in. */
  groups?: string[];
}

/** The anonymous principal: may pull from public namespaces, nothing else. */
export const ANONYMOUS: Principal = { type: 'anonymous', name: '', isAdmin: false };

/** Robot accounts log in with this prefix on their name, as in Harbor. */
export const ROBOT_PREFIX = 'robot$';
/** Personal access tokens start with this, so they can be told from passwords without a hash per login. */
export const PAT_PREFIX = 'lpat_';

/** SHA-256 of a high-entropy secret (PATs, refresh tokens): enough to look them up, useless if the table leaks. */
export function secretDigest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A new random secret with a prefix. */
export function newSecret(prefix: string): string {
  return `${prefix}${randomBytes(24).toString('base64url')}`;
}

/** Checks credentials against the database, with argon2id through a PasswordHasher. */
export interface Authenticator {
  /** The principal the credentials prove, or null when they are wrong (never says which part). */
  authenticate(username: string, password: string): Promise<Principal | null>;
}

/**
 * Creates the authenticator; its dummy hash (for accounts that do not exist) is made once, on first use. With a
 * `directory`, names that are no local user's are checked there; a directory that cannot answer is a 503.
 */
export function createAuthenticator(db: SqlExecutor, hasher: PasswordHasher, now: () => number = Date.now, directory?: DirectoryClient): Authenticator {
  let dummy: Promise<string> | undefined;
  /** Verifies against a hash of a random secret with the same parameters: the cost of a real check, never true. */
  async function spend(password: string): Promise<null> {
    dummy ??= hasher.hash(randomBytes(32).toString('base64url')).catch((error: unknown) => {
      dummy = undefined;
      throw error;
    });
    await hasher.verify(password, await dummy);
    return null;
  }

  /** Checks a password with the directory and makes or refreshes the user's row; the principal carries its groups. */
  async function directorySignIn(dir: DirectoryClient, username: string, password: string): Promise<Principal | null> {
    let identity;
    try {
      identity = await dir.authenticate(username, password);
    } catch (error) {
      if (error instanceof DirectoryUnavailableError) throw new OciError('UNAVAILABLE', 'the directory that checks this password cannot be reached; try again later');
      throw error;
    }
    if (!identity) return null;
    // Lading names users in lower case; the directory matched the name sent case-insensitively.
    const user = await meta.upsertDirectoryUser(db, identity.username.toLowerCase());
    if (!user || user.disabled) return null;
    return {
      type: 'user',
      name: user.name,
      isAdmin: user.isAdmin,
      credential: { kind: 'password', userId: user.id, passwordVersion: user.passwordVersion },
      groups: identity.groups,
    };
  }

  return {
    async authenticate(username, password) {
      if (username.startsWith(ROBOT_PREFIX)) {
        const robot = await meta.findRobot(db, username.slice(ROBOT_PREFIX.length));
        if (!robot || robot.revokedAt || (robot.expiresAt && robot.expiresAt.getTime() <= now())) return spend(password);
        if (!(await hasher.verify(password, robot.secretHash))) return null;
        return { type: 'robot', name: username, isAdmin: false, credential: { kind: 'robot', robotId: robot.id } };
      }
      if (password.startsWith(PAT_PREFIX)) {
        // Looked up by digest whoever the user is, so a missing user costs what a present one does.
        const token = await meta.findAccessToken(db, secretDigest(password));
        if (!token || token.userName !== username) return null;
        return { type: 'user', name: token.userName, isAdmin: token.isAdmin, credential: { kind: 'pat', userId: token.userId, accessTokenId: token.tokenId }, ...(token.groups.length ? { groups: token.groups } : {}) };
      }
      const user = await meta.findUser(db, username);
      if (directory && (!user || user.source === 'ldap')) return directorySignIn(directory, username, password);
      if (!user || user.disabled || user.source !== 'local') return spend(password);
      if (!(await hasher.verify(password, user.passwordHash))) return null;
      return { type: 'user', name: user.name, isAdmin: user.isAdmin, credential: { kind: 'password', userId: user.id, passwordVersion: user.passwordVersion } };
    },
  };
}
