import { createUuidV7Generator } from './ids';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('createUuidV7Generator', () => {
  it('puts the clock in the first 48 bits and sets the version and variant bits over the random bytes', () => {
    const ids = createUuidV7Generator(() => 0x0190f1c27b3a, (n) => Buffer.alloc(n, 0xff));
    expect(ids()).toBe('0190f1c2-7b3a-7fff-bfff-ffffffffffff');
  });

  it('keeps version 7 and variant 10 when the random bytes are all zero', () => {
    const ids = createUuidV7Generator(() => 1, (n) => Buffer.alloc(n, 0));
    expect(ids()).toBe('00000000-0001-7000-8000-000000000000');
  });

  it('makes ids that sort by the clock, whatever the random bytes', () => {
    let clock = 1_700_000_000_000;
    let fill = 0xff;
    // Later ids get smaller random bytes, so only the timestamp can order them.
    const ids = createUuidV7Generator(
      () => clock,
      (n) => Buffer.alloc(n, fill),
    );
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      made.push(ids());
      clock += 1;
      fill -= 0x30;
    }
    expect([...made].sort()).toEqual(made);
    expect(new Set(made).size).toBe(5);
  });

  it('encodes a clock beyond 32 bits without losing its high bytes', () => {
    const ms = 2 ** 47 + 5;
    const ids = createUuidV7Generator(() => ms, (n) => Buffer.alloc(n, 0));
    expect(ids().replace(/-/g, '').slice(0, 12)).toBe(ms.toString(16).padStart(12, '0'));
  });

  it('by default makes distinct well-formed version 7 ids from the real clock and randomness', () => {
    const ids = createUuidV7Generator();
    const made = Array.from({ length: 100 }, () => ids());
    for (const id of made) {
      expect(id).toMatch(UUID);
      expect(id[14]).toBe('7');
      expect('89ab').toContain(id[19]);
    }
    expect(new Set(made).size).toBe(100);
  });
});
