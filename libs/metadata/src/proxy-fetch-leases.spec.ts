import { databaseEngines } from '@lading/testing';
import type { Database } from './database';
import { migrate } from './migrate';
import { releaseFetchLease, renewFetchLease, takeFetchLease } from './proxy-fetch-leases';

const MINUTE = 60_000;

/** The same checks on PGlite (embedded) and on a real PostgreSQL with a pool of connections (replicas). */
describe.each(databaseEngines('fetchleases'))('proxy fetch leases on %s', (_name, open) => {
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

  /** Makes a lease look as if its holder stopped renewing it a second ago (a replica that died mid-fetch). */
  const expire = (key: string) => db.query(`UPDATE proxy_fetch_leases SET expires_at = now() - interval '1 second' WHERE key = $1`, [key]);
  const holderOf = async (key: string) => (await db.query<{ holder: string }>(`SELECT holder FROM proxy_fetch_leases WHERE key = $1`, [key])).rows[0]?.holder ?? null;

  it('gives a key to exactly one of many concurrent takers', async () => {
    const takers = Array.from({ length: 20 }, (_, i) => `replica-${i}`);
    const won = await Promise.all(takers.map((holder) => takeFetchLease(db, 'hub/app@sha256:a', holder, MINUTE)));
    expect(won.filter(Boolean)).toHaveLength(1);
    expect(await holderOf('hub/app@sha256:a')).toBe(takers[won.indexOf(true)]);
  });

  it('lets only the holder renew or release a lease, and a released key is free again', async () => {
    expect(await takeFetchLease(db, 'hub/app@sha256:b', 'first', MINUTE)).toBe(true);
    expect(await renewFetchLease(db, 'hub/app@sha256:b', 'second', MINUTE)).toBe(false);
    await releaseFetchLease(db, 'hub/app@sha256:b', 'second');
    expect(await takeFetchLease(db, 'hub/app@sha256:b', 'second', MINUTE)).toBe(false);
    expect(await renewFetchLease(db, 'hub/app@sha256:b', 'first', MINUTE)).toBe(true);
    await releaseFetchLease(db, 'hub/app@sha256:b', 'first');
    expect(await holderOf('hub/app@sha256:b')).toBeNull();
    expect(await takeFetchLease(db, 'hub/app@sha256:b', 'second', MINUTE)).toBe(true);
  });

  it('hands an expired lease to the next taker, after which its old holder can neither renew nor release it', async () => {
    expect(await takeFetchLease(db, 'hub/app@sha256:c', 'dead', MINUTE)).toBe(true);
    expect(await takeFetchLease(db, 'hub/app@sha256:c', 'alive', MINUTE)).toBe(false);
    await expire('hub/app@sha256:c');
    expect(await takeFetchLease(db, 'hub/app@sha256:c', 'alive', MINUTE)).toBe(true);
    expect(await renewFetchLease(db, 'hub/app@sha256:c', 'dead', MINUTE)).toBe(false);
    await releaseFetchLease(db, 'hub/app@sha256:c', 'dead');
    expect(await holderOf('hub/app@sha256:c')).toBe('alive');
  });

  it('keeps a renewed lease from being taken over', async () => {
    expect(await takeFetchLease(db, 'hub/app@sha256:d', 'slow', MINUTE)).toBe(true);
    await expire('hub/app@sha256:d');
    expect(await renewFetchLease(db, 'hub/app@sha256:d', 'slow', MINUTE)).toBe(true);
    expect(await takeFetchLease(db, 'hub/app@sha256:d', 'other', MINUTE)).toBe(false);
  });
});
