import { execFileSync, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, TOOL_ENTRIES, bundle, bundleNames, bundleRequest, isTestSupport, serviceBundle, serviceNames, startCommand } from './bundle';

describe('tools/build bundle', () => {
  let dir: string;
  beforeAll(() => {
    // Inside the checkout (dist/ is ignored by git), where `@lading/*` and npm packages resolve as for the services.
    mkdirSync(path.join(REPO_ROOT, 'dist'), { recursive: true });
    dir = mkdtempSync(path.join(REPO_ROOT, 'dist', 'spec-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds every service with an entry file, embedded and the distributed ones', () => {
    expect(serviceNames()).toEqual(expect.arrayContaining(['auth', 'blob', 'embedded', 'gateway', 'gc', 'manifest', 'webhooks']));
    expect(serviceBundle('gateway')).toEqual({
      entry: path.join(REPO_ROOT, 'services/gateway/src/main.ts'),
      outfile: path.join(REPO_ROOT, 'dist/gateway/main.cjs'),
    });
  });

  it("bundles the embedded registry's read workers apart, with only the read path: no PGlite, zod nor OpenTelemetry SDK", async () => {
    const request = serviceBundle('embedded');
    expect(request.also).toEqual([{ entry: path.join(REPO_ROOT, 'services/embedded/src/read-worker-main.ts'), outfile: path.join(REPO_ROOT, 'dist/embedded/read-worker.cjs'), pure: true }]);
    const outfile = path.join(dir, 'embedded', 'read-worker.cjs');
    await bundle({ ...request.also![0], outfile });
    const required = new Set([...readFileSync(outfile, 'utf8').matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]));
    expect(required).toContain('undici');
    for (const heavy of ['@electric-sql/pglite', 'zod', '@opentelemetry/sdk-node', 'kafkajs', 'pg', 'minio', 'ldapts', 'hash-wasm']) expect([heavy, required.has(heavy)]).toEqual([heavy, false]);
    // Run on its own (not as a worker of the registry), it says what it is and exits 1.
    const alone = spawnSync(process.execPath, [outfile], { cwd: REPO_ROOT, env: { PATH: process.env.PATH }, encoding: 'utf8' });
    expect([alone.status, alone.stderr]).toEqual([1, expect.stringMatching(/is a read worker of the embedded registry/)]);
  });

  it('names the operator CLIs beside the services, each bundled from its entry file to dist/<name>/main.cjs', () => {
    expect(bundleNames()).toEqual([...serviceNames(), 'lading-admin', 'garbage-collect', 'console']);
    expect(bundleRequest('lading-admin')).toEqual({
      entry: path.join(REPO_ROOT, 'tools/admin/lading-admin.ts'),
      outfile: path.join(REPO_ROOT, 'dist/lading-admin/main.cjs'),
    });
    expect(bundleRequest('gc')).toEqual(serviceBundle('gc'));
    for (const [name, entry] of Object.entries(TOOL_ENTRIES)) {
      expect([name, existsSync(path.join(REPO_ROOT, entry))]).toEqual([name, true]);
      expect(serviceNames()).not.toContain(name);
    }
  });

  it('refuses a bundle name it does not know, naming the ones it does', () => {
    expect(() => bundleRequest('nope')).toThrow(/^no such bundle: nope \(bundles: .*\blading-admin\b.*\)$/);
  });

  it.each(Object.keys(TOOL_ENTRIES))('bundles the %s CLI into a file that runs on plain node and answers --help', async (name) => {
    const outfile = path.join(dir, 'tools', name, 'main.cjs');
    await bundle({ entry: bundleRequest(name).entry, outfile });
    const help = execFileSync(process.execPath, [outfile, '--help'], { cwd: REPO_ROOT, env: { PATH: process.env.PATH }, encoding: 'utf8' });
    expect(help).toMatch(new RegExp(`^usage: ${name}\\b`, 'm'));
  });

  it('builds the web console into index.html and hashed assets under /ui/, with no inline script or style', () => {
    const outDir = path.join(dir, 'console');
    // In a child process: Vite's bundler (rolldown) refuses objects made in jest's module sandbox.
    const script = `require(${JSON.stringify(path.join(REPO_ROOT, 'tools/build/bundle.ts'))}).buildConsole(process.argv[1])`;
    execFileSync(process.execPath, ['--import', 'tsx', '--eval', script, outDir], { cwd: REPO_ROOT, stdio: 'pipe' });
    const html = readFileSync(path.join(outDir, 'index.html'), 'utf8');
    const assets = readdirSync(path.join(outDir, 'assets'));
    expect(assets.some((f) => /^index-[\w-]+\.js$/.test(f))).toBe(true);
    expect(assets.some((f) => /^index-[\w-]+\.css$/.test(f))).toBe(true);
    expect(html).toMatch(/<script type="module" crossorigin src="\/ui\/assets\/index-[\w-]+\.js"><\/script>/);
    // The gateway's CSP allows scripts and styles from 'self' only: no inline code, no style attribute.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=/);
  });

  it("reads the command `npm start` runs from package.json: node on the embedded bundle", () => {
    const command = startCommand();
    expect(command[0]).toBe('node');
    expect(command[command.length - 1]).toBe(path.relative(REPO_ROOT, serviceBundle('embedded').outfile));
  });

  it('refuses a start script that does not end by running node', () => {
    const root = path.join(dir, 'other-root');
    mkdirSync(root, { recursive: true });
    writeFileSync(path.join(root, 'package.json'), JSON.stringify({ scripts: { start: 'npm run build && tsx main.ts' } }));
    expect(() => startCommand(root)).toThrow(/does not end by running node/);
  });

  it('resolves files that sources find beside themselves (migrations, event schemas) from a bundle in another directory', async () => {
    const entry = path.join(dir, 'entry.ts');
    writeFileSync(entry, [
      "import { MIGRATIONS_DIR } from '@lading/metadata';",
      "import { EVENT_SCHEMAS_DIR } from '@lading/events';",
      "import { REGISTRY_MIGRATIONS } from '@lading/runtime';",
      'console.log(JSON.stringify({ MIGRATIONS_DIR, EVENT_SCHEMAS_DIR, sets: REGISTRY_MIGRATIONS }));',
    ].join('\n'));
    const outfile = path.join(dir, 'out', 'main.cjs');
    await bundle({ entry, outfile });
    const printed = JSON.parse(execFileSync(process.execPath, [outfile], { cwd: REPO_ROOT }).toString()) as Record<string, string> & { sets: Array<{ owner: string; dir: string }> };
    expect(printed.MIGRATIONS_DIR).toBe(path.join(REPO_ROOT, 'libs/metadata/migrations'));
    expect(printed.EVENT_SCHEMAS_DIR).toBe(path.join(REPO_ROOT, 'docs/events'));
    expect(existsSync(printed.MIGRATIONS_DIR)).toBe(true);
    // Every lib's migrations, each beside its owner: libs/<owner>/migrations.
    expect(printed.sets.map((s) => s.owner)).toEqual(expect.arrayContaining(['metadata', 'events']));
    for (const set of printed.sets) {
      expect([set.owner, set.dir]).toEqual([set.owner, path.join(REPO_ROOT, 'libs', set.owner, 'migrations')]);
      expect([set.owner, existsSync(set.dir)]).toEqual([set.owner, true]);
    }
  });

  it('inlines workspace code and leaves npm packages to require at run time', async () => {
    const entry = path.join(dir, 'app.ts');
    writeFileSync(entry, "import express from 'express';\nimport { ERROR_CODES } from '@lading/oci';\nconsole.log(typeof express, Object.keys(ERROR_CODES).length);\n");
    const outfile = path.join(dir, 'app', 'main.cjs');
    await bundle({ entry, outfile });
    const code = readFileSync(outfile, 'utf8');
    expect(code).toContain('require("express")');
    expect(code).not.toContain('require("@lading/');
  });

  it('tells test support (specs, test/ folders, @lading/testing) from what ships', () => {
    expect(isTestSupport(path.join(REPO_ROOT, 'services/embedded/test/bad-input-cases.ts'))).toBe(true);
    expect(isTestSupport('libs/storage/test/driver-suite.ts')).toBe(true);
    expect(isTestSupport('libs/testing/src/index.ts')).toBe(true);
    expect(isTestSupport('services/blob/src/blob-service.spec.ts')).toBe(true);
    expect(isTestSupport(path.join(REPO_ROOT, 'services/embedded/src/main.ts'))).toBe(false);
    expect(isTestSupport('libs/oci/src/index.ts')).toBe(false);
  });

  it('refuses to bundle test support that a shipped file imports', async () => {
    const entry = path.join(dir, 'leaky.ts');
    writeFileSync(entry, `import { startTestMetrics } from '${path.join(REPO_ROOT, 'libs/telemetry/test/test-metrics')}';\nconsole.log(typeof startTestMetrics);\n`);
    await expect(bundle({ entry, outfile: path.join(dir, 'leaky', 'main.cjs') })).rejects.toThrow(/test support must not ship: libs\/telemetry\/test\/test-metrics\.ts/);
  });
});

describe('the embedded bundle on the command line', () => {
  let dir: string;
  let outfile: string;
  const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  beforeAll(async () => {
    mkdirSync(path.join(REPO_ROOT, 'dist'), { recursive: true });
    dir = mkdtempSync(path.join(REPO_ROOT, 'dist', 'spec-cli-'));
    outfile = path.join(dir, 'embedded', 'main.cjs');
    await bundle({ entry: serviceBundle('embedded').entry, outfile }, 'abc1234');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs the bundle with `args` on a data directory and port of its own; a process that started would be killed. */
  function run(args: string[], env: Record<string, string> = {}) {
    const dataDir = path.join(dir, `data-${args.join('')}-${Object.keys(env).join('')}`);
    const result = spawnSync(process.execPath, [outfile, ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, LADING_DATA_DIR: dataDir, LADING_HTTP_ADDR: '127.0.0.1:47391', ...env },
      encoding: 'utf8',
      // A process that started instead of answering would serve until killed: stop it well inside jest's own limit.
      timeout: 30_000,
    });
    return { ...result, dataDirCreated: existsSync(dataDir) };
  }

  function listening(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  }

  it('prints its usage for --help and exits 0 without opening its data or listening', async () => {
    const result = run(['--help']);
    expect([result.status, result.signal]).toEqual([0, null]);
    expect(result.stdout).toContain('lading-registry: the embedded registry');
    expect(result.stdout).toContain('LADING_CONFIG');
    expect(result.stdout).toContain('Configuration table of README.md');
    expect(result.stdout).toContain('--version');
    expect(result.stderr).toBe('');
    expect(result.dataDirCreated).toBe(false);
    expect(await listening(47391)).toBe(false);
  });

  it('prints the version of package.json and the commit it was built from for --version, and exits 0', () => {
    const result = run(['--version']);
    expect([result.status, result.signal]).toEqual([0, null]);
    expect(result.stdout).toBe(`lading ${version} (commit abc1234)\n`);
    expect(result.dataDirCreated).toBe(false);
  });

  it('refuses an unknown argument with status 2, pointing at --help, instead of starting', () => {
    const result = run(['--port=80']);
    expect([result.status, result.signal]).toEqual([2, null]);
    expect(result.stderr).toMatch(/^lading-registry: unknown argument --port=80 \(see node .*main\.cjs --help\)\n$/);
    expect(result.stdout).toBe('');
    expect(result.dataDirCreated).toBe(false);
  });

  it('refuses a bad configuration with status 2, every problem on its own line and no stack, before opening anything', () => {
    const result = run([], { LADING_NOPE: '1', LADING_LOG_LEVEL: 'loud', LADING_REGISTRY_MAXPAGESIZE: 'lots' });
    expect([result.status, result.signal]).toEqual([2, null]);
    expect(result.stderr.split('\n')).toEqual([
      'lading: 3 configuration problems:',
      '  - unknown configuration variable LADING_NOPE',
      expect.stringMatching(/^ {2}- invalid configuration at registry\.maxPageSize: .* \(environment variable LADING_REGISTRY_MAXPAGESIZE\)$/),
      expect.stringMatching(/^ {2}- invalid configuration at log\.level: .* \(environment variable LADING_LOG_LEVEL\)$/),
      '',
    ]);
    expect(result.dataDirCreated).toBe(false);
  });
});

