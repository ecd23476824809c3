/** Password and secret hashing with argon2id (OWASP's minimum parameters), in WebAssembly: no native build. */
import { randomBytes } from 'node:crypto';
import { argon2Verify, argon2id } from 'hash-wasm';

/** Hashes a password into an encoded argon2id string that carries its own salt and parameters. */
export function hashPassword(password: string): Promise<string> {
  return argon2id({ password, salt: randomBytes(16), parallelism: 1, iterations: 2, memorySize: 19456, hashLength: 32, outputType: 'encoded' });
}

/** Checks a password against an encoded argon2id hash. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  try {
    return await argon2Verify({ password, hash: encoded });
  } catch {
    return false;
  }
}
