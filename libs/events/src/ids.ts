/** Event ids: UUIDv7, so that ids sort by creation time and stay stable forever. */
import { randomBytes } from 'node:crypto';

/** Produces a new id; injected so that tests can control time and randomness. */
export type IdGenerator = () => string;

/** Creates a UUIDv7 generator from a clock (ms since epoch) and a source of random bytes. */
export function createUuidV7Generator(now: () => number = Date.now, random: (n: number) => Buffer = randomBytes): IdGenerator {
  return () => {
    const bytes = random(16);
    const ms = BigInt(now());
    for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = bytes.toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  };
}
