/**
 * Password and secret hashing with argon2id (OWASP's minimum parameters), in WebAssembly: no native build. Servers
 * hash through a {@link PasswordHasher} backed by worker threads (password-pool.ts), never on the event loop; the
 * functions here run on the calling thread and serve tests and command-line tools.
 */
import { randomBytes } from 'node:crypto';
import { argon2Verify, argon2id } from 'hash-wasm';

/** The argon2id parameters of every hash we make (each encoded hash also carries its own). */
export const ARGON2_PARAMS = { parallelism: 1, iterations: 2, memorySize: 19456, hashLength: 32 } as const;

/** Hashes and verifies passwords; the auth service takes one so that where the work runs is the caller's choice. */
export interface PasswordHasher {
  /** Hashes a password into an encoded argon2id string that carries its own salt and parameters. */
  hash(password: string): Promise<string>;
  /** Checks a password against an encoded argon2id hash (false for a malformed hash). */
  verify(password: string, encoded: string): Promise<boolean>;
}

/** Hashes a password into an encoded argon2id string that carries its own salt and parameters (on this thread). */
export function hashPassword(password: string): Promise<string> {
  return argon2id({ ...ARGON2_PARAMS, password, salt: randomBytes(16), outputType: 'encoded' });
}

/** Checks a password against an encoded argon2id hash (on this thread). */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  try {
    return await argon2Verify({ password, hash: encoded });
  } catch {
    return false;
  }
}

/** The hasher that works on the calling thread: for tests and tools, never for a server's requests. */
export const inThreadPasswordHasher: PasswordHasher = { hash: hashPassword, verify: verifyPassword };
