/**
 * The embedded mode's data lock: the directories a process opens for PGlite and the filesystem blob store are held
 * by exactly one process at a time. Two processes on one PGlite directory each run their own Postgres on the same
 * files, and whatever one of them acknowledged is lost when the other writes over it; so a second start refuses.
 *
 * On Linux the lock is an abstract-namespace unix socket (a name beginning with NUL, derived from the directory's
 * device and inode) that the holder listens on. Binding a name is exclusive, the kernel frees it the moment the
 * holder dies (`kill -9` included, so there is nothing stale to clean up and nothing to wait out), and a second
 * starter connects to it to learn the holder's pid. `<data.dir>/lading.pid` names the holder for people; it is
 * never what decides. Abstract names belong to the network namespace: two containers sharing a data volume but not
 * a network namespace do not see each other's lock.
 *
 * Elsewhere (no abstract sockets) the lock is the pid file itself, created exclusively; a file whose pid no longer
 * runs is taken over. That fallback can be fooled when a dead holder's pid has been reused by another process
 * (the start refuses, naming that pid), and two starts taking over the same stale file at the same instant can
 * both win.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, realpath, stat, unlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { LadingConfig } from '@lading/config';

/** The file in a held directory that names the holder's pid (for people; the lock itself is the socket on Linux). */
export const PID_FILE = 'lading.pid';

/** How a directory is held: an abstract unix socket (Linux), or an exclusively created pid file (elsewhere). */
export type LockMechanism = 'abstract-socket' | 'pid-file';

/** How long a refused start waits for the holder to say its pid before it reads the pid file instead. */
const ASK_HOLDER_MS = 2000;

/** A start refused because another process holds a directory it would open. */
export class DataDirLockedError extends Error {
  constructor(
    /** The held directory (its real path). */
    readonly dir: string,
    /** The configuration key the directory comes from (`data.dir`, `database.path`, `storage.root`). */
    readonly key: string,
    /** The holder's pid, when it could be learnt. */
    readonly holderPid: number | null,
  ) {
    super(
      `${key} ${dir} is in use by another Lading process (${holderPid === null ? 'pid unknown' : `pid ${holderPid}`}): ` +
        `stop it first, or give this process a directory of its own`,
    );
    this.name = 'DataDirLockedError';
  }
}

/** A directory a process opens, and the configuration key it comes from. */
export interface LockTarget {
  dir: string;
  key: string;
}

/** Held directories; `release` lets them go (idempotent). */
export interface DataDirLock {
  /** The held directories (real paths), in the order they were taken. */
  readonly dirs: string[];
  release(): Promise<void>;
}

/** Options of the lock functions. */
export interface DataDirLockOptions {
  /** The mechanism; by default the abstract socket on Linux and the pid file elsewhere. */
  mechanism?: LockMechanism;
  /** The pid written and reported (this process's by default). */
  pid?: number;
}

function defaultMechanism(): LockMechanism {
  return process.platform === 'linux' ? 'abstract-socket' : 'pid-file';
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The local directories the configured parts open (the PGlite database, the filesystem blob store), with
 * `data.dir` first when any of them lies under it; empty when the process opens none (Postgres and S3).
 */
export function embeddedLockTargets(config: LadingConfig): LockTarget[] {
  const dataDir = path.resolve(config.data.dir);
  const parts: LockTarget[] = [];
  if (config.database.driver === 'pglite') parts.push({ dir: path.resolve(config.database.path ?? path.join(dataDir, 'metadata')), key: 'database.path' });
  if (config.storage.driver === 'filesystem') parts.push({ dir: path.resolve(config.storage.root ?? path.join(dataDir, 'blobs')), key: 'storage.root' });
  if (parts.length === 0) return [];
  // The data directory is locked whenever something under it is opened (the name a refusal gives), and every opened
  // directory is locked too: another configuration may point straight at one of them from elsewhere.
  return parts.some((p) => isInside(p.dir, dataDir)) ? [{ dir: dataDir, key: 'data.dir' }, ...parts] : parts;
}

/** The abstract socket name of a directory: its device and inode, so that every path to it names one lock. */
async function socketName(dir: string): Promise<string> {
  const s = await stat(dir, { bigint: true });
  const id = createHash('sha256').update(`${s.dev}:${s.ino}`).digest('hex').slice(0, 32);
  return `\0lading-data-lock-${id}`;
}

async function readPidFile(dir: string): Promise<number | null> {
  try {
    const pid = Number.parseInt((await readFile(path.join(dir, PID_FILE), 'utf8')).trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Asks the holder listening on `name` for its pid: resolves null when nobody listens, undefined when it does not say. */
function askHolder(name: string): Promise<number | null | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const socket = net.connect(name);
    const done = (pid: number | null | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(pid);
    };
    const timer = setTimeout(() => done(undefined), ASK_HOLDER_MS);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > 4096) done(undefined);
    });
    socket.on('end', () => {
      try {
        const pid = (JSON.parse(text) as { pid?: unknown }).pid;
        done(typeof pid === 'number' && Number.isSafeInteger(pid) ? pid : undefined);
      } catch {
        done(undefined);
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? null : undefined));
  });
}

function listen(server: net.Server, name: string): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      resolve(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(null);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(name);
  });
}

async function removePidFile(dir: string, pid: number): Promise<void> {
  if ((await readPidFile(dir)) === pid) await unlink(path.join(dir, PID_FILE)).catch(() => undefined);
}

async function holdWithSocket(target: LockTarget, pid: number, writePidFile: boolean): Promise<() => Promise<void>> {
  const name = await socketName(target.dir);
  // A holder that has just died leaves no name behind, but a starter may see it still bound and then find nobody
  // answering: it tries again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.end(`${JSON.stringify({ pid, dir: target.dir })}\n`);
    });
    const err = await listen(server, name);
    if (!err) {
      // The lock must not keep a process alive that has nothing else to do.
      server.unref();
      if (writePidFile) await writeFile(path.join(target.dir, PID_FILE), `${pid}\n`);
      return async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        if (writePidFile) await removePidFile(target.dir, pid);
      };
    }
    if (err.code !== 'EADDRINUSE') throw err;
    const holder = await askHolder(name);
    if (holder !== null) throw new DataDirLockedError(target.dir, target.key, holder ?? (await readPidFile(target.dir)));
  }
  throw new DataDirLockedError(target.dir, target.key, await readPidFile(target.dir));
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function holdWithPidFile(target: LockTarget, pid: number): Promise<() => Promise<void>> {
  const file = path.join(target.dir, PID_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx');
      try {
        await handle.writeFile(`${pid}\n`);
      } finally {
        await handle.close();
      }
      return () => removePidFile(target.dir, pid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readPidFile(target.dir);
    if (holder !== null && isRunning(holder)) throw new DataDirLockedError(target.dir, target.key, holder);
    // The holder is gone (or the file is being written right now: the next attempt reads it again).
    if (holder !== null) await unlink(file).catch(() => undefined);
    else await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new DataDirLockedError(target.dir, target.key, await readPidFile(target.dir));
}

/**
 * Takes the lock of each directory (creating it when missing), in order; refuses with `DataDirLockedError` when
 * another process holds any of them, letting go of the ones already taken. Directories that are one (by real
 * path) are locked once.
 */
export async function lockDirectories(targets: LockTarget[], options: DataDirLockOptions = {}): Promise<DataDirLock> {
  const mechanism = options.mechanism ?? defaultMechanism();
  const pid = options.pid ?? process.pid;
  const releases: Array<() => Promise<void>> = [];
  const dirs: string[] = [];
  const releaseAll = async () => {
    while (releases.length > 0) await releases.pop()!();
  };
  try {
    for (const target of targets) {
      await mkdir(target.dir, { recursive: true });
      const dir = await realpath(target.dir);
      if (dirs.includes(dir)) continue;
      const real = { ...target, dir };
      // The pid file goes only where a person looks (the data directory): the parts' directories belong to PGlite
      // and the blob store. The fallback needs it everywhere, as it is the lock there.
      releases.push(mechanism === 'pid-file' ? await holdWithPidFile(real, pid) : await holdWithSocket(real, pid, target.key === 'data.dir'));
      dirs.push(dir);
    }
  } catch (err) {
    await releaseAll();
    throw err;
  }
  let released: Promise<void> | null = null;
  return {
    dirs,
    release: () => (released ??= releaseAll()),
  };
}

/** Takes the lock of every local directory the configuration opens (see `embeddedLockTargets`); none in distributed mode. */
export function lockEmbeddedData(config: LadingConfig, options: DataDirLockOptions = {}): Promise<DataDirLock> {
  return lockDirectories(embeddedLockTargets(config), options);
}
