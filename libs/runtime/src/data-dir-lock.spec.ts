/**
 * The data lock in one process: a directory is held once, every path to it names the same lock, the directories
 * the configuration opens outside data.dir are held too, and letting go frees them. What a second process and a
 * holder killed with `kill -9` see is proved on real processes in services/embedded/src/single-holder.spec.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '@lading/config';
import { DataDirLockedError, PID_FILE, embeddedLockTargets, lockDirectories, lockEmbeddedData } from './data-dir-lock';

describe('the embedded data lock', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'lading-lock-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const config = (input: Record<string, unknown>) => parseConfig({ log: { level: 'silent' }, ...input });

  it('refuses a second holder of a data directory, naming the directory and the holder, until the first lets go', async () => {
    const dir = path.join(root, 'data');
    const first = await lockEmbeddedData(config({ data: { dir } }));
    expect(await readFile(path.join(dir, PID_FILE), 'utf8')).toBe(`${process.pid}\n`);
    const refusal = await lockEmbeddedData(config({ data: { dir } })).catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(DataDirLockedError);
    expect(refusal).toMatchObject({ dir, key: 'data.dir', holderPid: process.pid });
    expect((refusal as Error).message).toBe(`data.dir ${dir} is in use by another Lading process (pid ${process.pid}): stop it first, or give this process a directory of its own`);
    await first.release();
    await expect(stat(path.join(dir, PID_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
    const second = await lockEmbeddedData(config({ data: { dir } }));
    await second.release();
  });

  it('takes every path to one directory (a symlink) as the same lock', async () => {
    const dir = path.join(root, 'data');
    const held = await lockDirectories([{ dir, key: 'data.dir' }]);
    await symlink(dir, path.join(root, 'link'));
    await expect(lockDirectories([{ dir: path.join(root, 'link'), key: 'data.dir' }])).rejects.toMatchObject({ dir, holderPid: process.pid });
    await held.release();
  });

  it('holds a database path outside data.dir too, so that a configuration pointing at it from elsewhere is refused', async () => {
    const a = path.join(root, 'a');
    const held = await lockEmbeddedData(config({ data: { dir: a } }));
    const other = config({ data: { dir: path.join(root, 'b') }, database: { path: path.join(a, 'metadata') } });
    expect(embeddedLockTargets(other)).toEqual([
      { dir: path.join(root, 'b'), key: 'data.dir' },
      { dir: path.join(a, 'metadata'), key: 'database.path' },
      { dir: path.join(root, 'b', 'blobs'), key: 'storage.root' },
    ]);
    await expect(lockEmbeddedData(other)).rejects.toMatchObject({ dir: path.join(a, 'metadata'), key: 'database.path', holderPid: process.pid });
    // The refused start let go of what it had taken before it met the held directory.
    const b = await lockDirectories([{ dir: path.join(root, 'b'), key: 'data.dir' }]);
    await b.release();
    await held.release();
  });

  it('locks nothing when the process opens no local directory (Postgres and S3)', () => {
    const distributed = config({
      mode: 'distributed',
      database: { url: 'postgres://x@127.0.0.1/x' },
      storage: { endpoint: 'http://127.0.0.1:9000', accessKey: 'k', secretKey: 'secret-key' },
      kafka: { brokers: ['127.0.0.1:9092'] },
    });
    expect(embeddedLockTargets(distributed)).toEqual([]);
  });

  describe('the pid-file fallback (systems without abstract sockets)', () => {
    it('refuses while the pid in the file runs, and takes over a file whose process is gone', async () => {
      const dir = path.join(root, 'data');
      const held = await lockDirectories([{ dir, key: 'data.dir' }], { mechanism: 'pid-file' });
      await expect(lockDirectories([{ dir, key: 'data.dir' }], { mechanism: 'pid-file', pid: process.pid + 1 })).rejects.toMatchObject({ holderPid: process.pid });
      await held.release();
      // A pid that ran and is gone, as a holder killed with kill -9 leaves behind.
      const dead = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString());
      await writeFile(path.join(dir, PID_FILE), `${dead}\n`);
      const next = await lockDirectories([{ dir, key: 'data.dir' }], { mechanism: 'pid-file' });
      expect(await readFile(path.join(dir, PID_FILE), 'utf8')).toBe(`${process.pid}\n`);
      await next.release();
    });
  });
});
