import { setImmediate as nextTurn } from 'node:timers/promises';
import { PasswordPool, PasswordPoolBusyError, createPasswordPool } from './password-pool';
import { hashPassword, verifyPassword } from './passwords';

describe('password pool', () => {
  const pools: PasswordPool[] = [];
  const pool = (size: number, queueLimit: number) => {
    const created = createPasswordPool({ size, queueLimit });
    pools.push(created);
    return created;
  };
  afterAll(async () => Promise.all(pools.map((p) => p.close())));

  it('hashes and verifies in worker threads, with the same argon2id parameters as the in-thread functions', async () => {
    const workers = pool(2, 8);
    const hashed = await workers.hash('correct horse');
    expect(hashed).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verifyPassword('correct horse', hashed)).toBe(true);
    const local = await hashPassword('battery staple');
    expect(await workers.verify('battery staple', local)).toBe(true);
    expect(await workers.verify('wrong', local)).toBe(false);
    expect(await workers.verify('anything', 'not an argon2 hash')).toBe(false);
  });

  it('leaves the event loop free while it hashes', async () => {
    const workers = pool(1, 1);
    const encoded = await workers.hash('warm the worker up');
    let done = false;
    const verifying = workers.verify('warm the worker up', encoded).then((ok) => {
      done = true;
      return ok;
    });
    // On the event loop, argon2id would run as one blocking call: not one turn would pass until it was done.
    let turns = 0;
    while (!done && turns < 20) {
      await nextTurn();
      turns++;
    }
    expect(turns).toBe(20);
    expect(done).toBe(false);
    expect(await verifying).toBe(true);
  });

  it('refuses a job at once when every worker is busy and the queue is full, and runs the others', async () => {
    const workers = pool(1, 1);
    const encoded = await workers.hash('p');
    const settled: string[] = [];
    const running = workers.verify('p', encoded).then(() => settled.push('running'));
    const queued = workers.verify('p', encoded).then(() => settled.push('queued'));
    const refused = workers.verify('p', encoded).catch((error: unknown) => {
      settled.push('refused');
      return error;
    });
    expect(workers.pending()).toBe(2);
    expect(await refused).toBeInstanceOf(PasswordPoolBusyError);
    await Promise.all([running, queued]);
    // Refused before the job ahead of it had finished: no waiting behind the queue.
    expect(settled).toEqual(['refused', 'running', 'queued']);
    expect(workers.pending()).toBe(0);
  });

  it('rejects what is pending when closed, and every job after', async () => {
    const workers = pool(1, 4);
    const pending = [workers.hash('a'), workers.hash('b'), workers.hash('c')].map((job) => job.then(() => 'done', (error: Error) => error.message));
    await workers.close();
    expect(await Promise.all(pending)).toEqual(Array(3).fill('the password pool is closed'));
    await expect(workers.verify('a', 'b')).rejects.toThrow('the password pool is closed');
  });
});
