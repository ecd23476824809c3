/**
 * Who is asking: turns the credentials of a token request (a user's password, a personal access token used as a
 * password, or a robot's secret) into a principal, or anonymous when there are none.
 */
import { createHash, randomBytes } from 'node:crypto';
import { verifyPassword } from '@lading/access';
import * as meta from '@lading/metadata';
import type { SqlExecutor } from '@lading/metadata';

/** An authenticated caller. */
export interface Principal {
  type: 'user' | 'robot' | 'anonymous';
  /** The token subject: the user's name, `robot$<name>`, or '' for anonymous. */
  name: string;
  isAdmin: boolean;
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

/** Checks credentials; null when they are wrong (never says which part). */
export async function authenticate(db: SqlExecutor, username: string, password: string): Promise<Principal | null> {
  if (username.startsWith(ROBOT_PREFIX)) {
    const robot = await meta.findRobot(db, username.slice(ROBOT_PREFIX.length));
    if (!robot || robot.revokedAt || (robot.expiresAt && robot.expiresAt.getTime() <= Date.now())) return null;
    return (await verifyPassword(password, robot.secretHash)) ? { type: 'robot', name: username, isAdmin: false } : null;
  }
  const user = await meta.findUser(db, username);
  if (!user || user.disabled) return null;
  if (password.startsWith(PAT_PREFIX)) {
    const owner = await meta.findAccessTokenUser(db, secretDigest(password));
    return owner === username ? { type: 'user', name: user.name, isAdmin: user.isAdmin } : null;
  }
  return (await verifyPassword(password, user.passwordHash)) ? { type: 'user', name: user.name, isAdmin: user.isAdmin } : null;
}

/** Re-reads a principal by subject (refresh tokens): null when it was deleted, disabled, revoked or expired. */
export async function principalBySubject(db: SqlExecutor, type: string, name: string): Promise<Principal | null> {
  if (type === 'robot') {
    const robot = await meta.findRobot(db, name.slice(ROBOT_PREFIX.length));
    if (!robot || robot.revokedAt || (robot.expiresAt && robot.expiresAt.getTime() <= Date.now())) return null;
    return { type: 'robot', name, isAdmin: false };
  }
  const user = await meta.findUser(db, name);
  return user && !user.disabled ? { type: 'user', name: user.name, isAdmin: user.isAdmin } : null;
}
