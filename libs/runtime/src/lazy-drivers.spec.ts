/** The embedded process's parts load none of the drivers only a distributed deployment uses. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = path.join(__dirname, '..', 'test', 'loaded-drivers.ts');

/** The npm packages a fresh process has loaded after opening the embedded parts on `dataDir` (and more, per `extra`). */
async function loadedPackages(dataDir: string, extra: string[] = []): Promise<string[]> {
  // A process of its own: jest's module registry is not node's, and this one must start with nothing loaded. A first
  // start on a fresh data directory (initdb, migrations) takes tens of seconds on a busy box, hence the timeouts.
  const { stdout } = await run(process.execPath, ['--import', 'tsx', SCRIPT, dataDir, ...extra], { cwd: path.join(__dirname, '..', '..', '..'), timeout: 170_000 });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '[]') as string[];
}

describe('the embedded parts (PGlite, filesystem, in-process bus)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-lazy-drivers-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('open without loading kafkajs, pg or minio, while PGlite is loaded', async () => {
    const packages = await loadedPackages(path.join(dir, 'plain'));
    expect(packages).toContain('@electric-sql/pglite');
    expect(packages.filter((name) => ['kafkajs', 'pg', 'minio'].includes(name))).toEqual([]);
  }, 180_000);

  it('load minio once a MinIO client is made, and only then', async () => {
    const packages = await loadedPackages(path.join(dir, 'minio'), ['minio']);
    expect(packages).toContain('minio');
    expect(packages.filter((name) => ['kafkajs', 'pg'].includes(name))).toEqual([]);
  }, 180_000);
});
