/**
 * tools/node/ensure-node24, run as .ci/run and `source tools/node/use` run it, on a machine whose node is older than
 * 24 (a node on the PATH that says v20.19.0 and otherwise is the real one, so that npm still works): it installs the
 * version .nvmrc pins from the npm registry into the cache it is given, once, and leaves a new enough node alone.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'tools', 'node', 'ensure-node24');
const PINNED = readFileSync(path.join(ROOT, '.nvmrc'), 'utf8').trim();

/** A directory holding `node` (and `npm`, when given) shims, to put first on the PATH. */
function shims(dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, body] of Object.entries(files)) {
    writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(dir, name), 0o755);
  }
  return dir;
}

describe('tools/node/ensure-node24', () => {
  let work: string;
  let cache: string;
  let oldNode: string;
  // The user's own npm configuration and cache; only where the node goes differs (and npm's global configuration is
  // the one next to the node on the PATH, as on a machine where nothing set it).
  const env = (pathDirs: string[]) => {
    const e: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cache, PATH: [...pathDirs, process.env.PATH].join(':') };
    delete e.npm_config_globalconfig;
    delete e.NPM_CONFIG_GLOBALCONFIG;
    return e;
  };
  const run = (pathDirs: string[], args: string[] = []) => spawnSync(SCRIPT, args, { encoding: 'utf8', env: env(pathDirs) });

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), 'ensure-node24-'));
    cache = path.join(work, 'cache');
    // An old node: says v20.19.0 when asked its version and is the real node for everything else (npm runs on it).
    oldNode = shims(path.join(work, 'old-node'), { node: `[ "$1" = --version ] && { echo v20.19.0; exit 0; }\nexec "${process.execPath}" "$@"` });
    // npm reads its global configuration (a CA file, say) from <prefix of the node it runs on>/etc/npmrc: the old
    // node's prefix is `work`, so it gets a copy of the configuration npm uses here.
    const current = execFileSync('npm', ['config', 'get', 'globalconfig'], { encoding: 'utf8' }).trim();
    mkdirSync(path.join(work, 'etc'));
    writeFileSync(machineNpmrc(), existsSync(current) ? readFileSync(current) : '');
  });
  const machineNpmrc = () => path.join(work, 'etc', 'npmrc');
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('installs the pinned Node.js into the per-user cache when the node on the PATH is older, leaving nothing else there', () => {
    const first = run([oldNode]);
    expect(first.stderr).toContain(`installing Node.js ${PINNED}`);
    expect(first.status).toBe(0);
    const bin = path.join(cache, 'lading', `node-v${PINNED}`, 'bin');
    expect(first.stdout).toBe(`${bin}\n`);
    expect(execFileSync(path.join(bin, 'node'), ['--version'], { encoding: 'utf8' }).trim()).toBe(`v${PINNED}`);
    // Nothing but the install itself is left in the cache (no temporary directory, no tarball).
    expect(readdirSync(path.join(cache, 'lading'))).toEqual([`node-v${PINNED}`]);
  }, 120_000);

  it('uses the installed one again without fetching anything (an npm that fails is never called)', () => {
    const failingNpm = shims(path.join(work, 'no-npm'), { npm: 'echo npm called >&2; exit 1' });
    const again = run([failingNpm, oldNode]);
    expect(again.stderr).toBe('');
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(`${path.join(cache, 'lading', `node-v${PINNED}`, 'bin')}\n`);
  });

  it('prints shell lines that put it first and keep npm on the old node’s global config, for eval in .ci/run', () => {
    const lines = run([oldNode], ['--path']).stdout;
    expect(lines).toBe(`export PATH=${path.join(cache, 'lading', `node-v${PINNED}`, 'bin')}:"$PATH"\nexport npm_config_globalconfig=${machineNpmrc()}\n`);
    const shell = spawnSync('bash', ['-c', `${lines}node --version && npm exec -c 'node --version' && npm config get globalconfig`], { encoding: 'utf8', env: env([oldNode]) });
    expect({ stdout: shell.stdout, stderr: shell.stderr }).toEqual({ stdout: `v${PINNED}\nv${PINNED}\n${machineNpmrc()}\n`, stderr: expect.any(String) });
  }, 60_000);

  it('replaces a cache directory that does not hold the pinned node (a copy cut short), rather than use it', () => {
    const dest = path.join(cache, 'lading', `node-v${PINNED}`);
    rmSync(path.join(dest, 'bin', 'node'));
    const repaired = run([oldNode]);
    expect(repaired.status).toBe(0);
    expect(execFileSync(path.join(dest, 'bin', 'node'), ['--version'], { encoding: 'utf8' }).trim()).toBe(`v${PINNED}`);
    expect(readdirSync(path.join(cache, 'lading'))).toEqual([`node-v${PINNED}`]);
  }, 120_000);

  it('leaves a node that is 24 or newer alone: installs nothing, changes nothing on the PATH', () => {
    const freshCache = path.join(work, 'untouched');
    const newNode = shims(path.join(work, 'new-node'), { node: `[ "$1" = --version ] && { echo v26.1.0; exit 0; }\nexec "${process.execPath}" "$@"` });
    const result = spawnSync(SCRIPT, [], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: freshCache, PATH: `${newNode}:${process.env.PATH}` } });
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(`${newNode}\n`);
    const lines = spawnSync(SCRIPT, ['--path'], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: freshCache, PATH: `${newNode}:${process.env.PATH}` } });
    expect({ status: lines.status, stdout: lines.stdout }).toEqual({ status: 0, stdout: '' });
    expect(existsSync(freshCache)).toBe(false);
  });
});
