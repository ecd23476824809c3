/**
 * `npm run build`: compiles each service's `main.ts` into one CommonJS file, `dist/<service>/main.cjs`, so that a
 * process runs plain JavaScript on `node` instead of loading tsx's TypeScript loader (its own thread and ~35 MB of
 * resident memory) and compiling the sources at every start. `npm start`, the container image, the cluster tool and
 * the end-to-end tests run these bundles. The operator CLIs the image ships (`TOOL_ENTRIES`: lading-admin,
 * garbage-collect) are bundled the same way, to `dist/<cli>/main.cjs`. The web console (`services/console`, a Preact
 * app) is built by Vite into `dist/console/` (index.html and hashed assets), which the gateway serves under `/ui/`; its
 * bundle name is `console`.
 *
 * The `@lading/*` workspace code is inlined; every npm package stays an ordinary `require` resolved from
 * `node_modules` at run time, which is what lets OpenTelemetry's instrumentations patch express, pg, kafkajs and
 * undici as they load. A source file's `__dirname` keeps meaning that file's own directory, so files found next to the
 * sources (SQL migrations, event schemas) are found from the bundle too, as long as `dist/` stays in the checkout.
 *
 *   npm run build                    every service, operator CLI and the console
 *   npm run build -- embedded        only the named ones
 *   npm run -s build -- --start-command   prints the command `npm start` runs (for scripts that start it themselves)
 *
 * The embedded registry runs with two V8 settings that keep its memory down (see package.json's `start`):
 * `--wasm-tiering-budget` high enough that PGlite's Postgres stays on V8's baseline WebAssembly code (the optimising
 * tier's code for it cost ~80 MB) while hash-wasm's digest loops, which run far longer, are still optimised; and a
 * 4 MB young generation (`--max-semi-space-size`), enough for requests whose garbage is a few kilobytes. And with two
 * that keep V8 from marking its heap over and over while bytes stream (`--incremental-marking-soft-trigger=75`,
 * `--incremental-marking-hard-trigger=90`): by default, with a ~36 MB heap that grows slowly, V8 starts the next full
 * collection's marking as soon as the last one ends, and a 256 MB pull-through miss ran 12–20 back-to-back
 * mark-compacts (about half of its CPU); these start marking only once 75 % of the headroom to the same heap limit is
 * used; the heap limit stays as it was (docs/benchmarks.md, pull-through cache).
 */
import { build, type Plugin } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** The repository root (where `services/` and `dist/` are). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** What to bundle and where to put it. */
export interface BundleRequest {
  /** The entry file (TypeScript). */
  entry: string;
  /** The output file (`.cjs`). */
  outfile: string;
  /** Bundles built with it, beside it (a service's worker-thread entries: `SERVICE_WORKER_ENTRIES`). */
  also?: BundleRequest[];
  /**
   * Whether workspace modules are taken as free of side effects, so that what the entry does not use is left out with
   * the packages only it requires (a barrel's other modules: PGlite behind `@lading/runtime`, ...). For worker entries,
   * whose read path has no import for its side effects.
   */
  pure?: boolean;
}

/** The services that have an entry file: every `services/<name>/src/main.ts`. */
export function serviceNames(root = REPO_ROOT): string[] {
  return readdirSync(path.join(root, 'services'))
    .filter((name) => existsSync(path.join(root, 'services', name, 'src', 'main.ts')))
    .sort();
}

/**
 * Worker-thread entries a service's bundle starts beside its `main.cjs`, by service → bundle file name → entry file
 * relative to the repository root: `dist/<service>/<name>.cjs`. The embedded registry's read workers load only the
 * read path from theirs, not the whole process (services/embedded/src/read-worker-main.ts).
 */
export const SERVICE_WORKER_ENTRIES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  embedded: { 'read-worker': 'services/embedded/src/read-worker-main.ts' },
};

/** The bundle request for one service: `services/<name>/src/main.ts` → `dist/<name>/main.cjs`, with its worker entries. */
export function serviceBundle(name: string, root = REPO_ROOT): BundleRequest {
  const workers = Object.entries(SERVICE_WORKER_ENTRIES[name] ?? {});
  const request: BundleRequest = { entry: path.join(root, 'services', name, 'src', 'main.ts'), outfile: path.join(root, 'dist', name, 'main.cjs') };
  if (workers.length > 0) request.also = workers.map(([file, entry]) => ({ entry: path.join(root, entry), outfile: path.join(root, 'dist', name, `${file}.cjs`), pure: true }));
  return request;
}

/**
 * The operator CLIs that ship beside the services (the image puts each on its PATH under this name), by bundle name
 * → entry file relative to the repository root: `dist/<name>/main.cjs`. Their names cannot be a service's.
 */
export const TOOL_ENTRIES: Readonly<Record<string, string>> = {
  'lading-admin': 'tools/admin/lading-admin.ts',
  'garbage-collect': 'tools/gc/garbage-collect.ts',
};

/** The web console's bundle name: not a Node bundle but a browser app, built by Vite (`buildConsole`). */
export const CONSOLE_BUNDLE = 'console';

/** Every bundle `npm run build` makes: the services, the operator CLIs, then the console. */
export function bundleNames(root = REPO_ROOT): string[] {
  return [...serviceNames(root), ...Object.keys(TOOL_ENTRIES), CONSOLE_BUNDLE];
}

/**
 * Builds the web console with its Vite config (services/console/vite.config.mts): `index.html` and its hashed
 * assets into `outDir` (`dist/console/`), which is emptied first.
 */
export async function buildConsole(outDir = path.join(REPO_ROOT, 'dist', CONSOLE_BUNDLE)): Promise<void> {
  const vite = await import('vite');
  await vite.build({ configFile: path.join(REPO_ROOT, 'services', CONSOLE_BUNDLE, 'vite.config.mts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
}

/** The bundle request for a service or an operator CLI by its bundle name; an unknown name is an error naming the known. */
export function bundleRequest(name: string, root = REPO_ROOT): BundleRequest {
  if (Object.hasOwn(TOOL_ENTRIES, name)) return { entry: path.join(root, TOOL_ENTRIES[name]), outfile: path.join(root, 'dist', name, 'main.cjs') };
  if (serviceNames(root).includes(name)) return serviceBundle(name, root);
  throw new Error(`no such bundle: ${name} (bundles: ${bundleNames(root).join(', ')})`);
}

/** A bare import (not relative, not absolute) of a package other than a workspace `@lading/*` one. */
const BARE_IMPORT = /^[^./]/;

/** Test support, which no bundle may contain: a spec, a project's `test/` folder, or the `@lading/testing` lib. */
const TEST_SUPPORT = /^(libs|services)\/[^/]+\/test\/|^libs\/testing\/|\.spec\.ts$/;

/** Whether a source file (absolute, or relative to `root`) is test support, which must never ship. */
export function isTestSupport(file: string, root = REPO_ROOT): boolean {
  return TEST_SUPPORT.test(path.relative(root, path.resolve(root, file)).split(path.sep).join('/'));
}

/**
 * Leaves npm packages (and node built-ins) to `require` at run time, refuses test support, and rewrites `__dirname`
 * in workspace sources to that source's own directory, expressed relative to the bundle's, so the bundle can move
 * with the checkout.
 */
function workspaceOnly(outdir: string, pure = false): Plugin {
  return {
    name: 'lading-workspace-only',
    setup(b) {
      b.onResolve({ filter: BARE_IMPORT }, (args) => (args.path.startsWith('@lading/') ? undefined : { path: args.path, external: true }));
      if (pure) {
        b.onResolve({ filter: /.*/ }, async (args) => {
          if (args.pluginData === 'pure' || args.kind === 'entry-point') return undefined;
          const resolved = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'pure' });
          return resolved.errors.length > 0 ? { errors: resolved.errors } : { ...resolved, sideEffects: false };
        });
      }
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (isTestSupport(args.path)) return { errors: [{ text: `test support must not ship: ${path.relative(REPO_ROOT, args.path)}` }] };
        const source = await readFile(args.path, 'utf8');
        if (!source.includes('__dirname')) return { contents: source, loader: 'ts' };
        const fromBundle = JSON.stringify(path.relative(outdir, path.dirname(args.path)));
        return { contents: source.replaceAll('__dirname', `require('node:path').resolve(__dirname, ${fromBundle})`), loader: 'ts' };
      });
    },
  };
}

/** The abbreviated commit of the checkout, for `--version`; undefined outside a git checkout (the image's build). */
export function checkoutCommit(root = REPO_ROOT): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Compiles one entry file and everything it imports from the workspace into one CommonJS file with a source map. */
export async function bundle(request: BundleRequest, commit = checkoutCommit()): Promise<void> {
  await Promise.all((request.also ?? []).map((also) => bundle(also, commit)));
  await build({
    // libs/runtime/src/version.ts reports it; left undeclared (no commit) when there is none.
    define: commit ? { __LADING_COMMIT__: JSON.stringify(commit) } : {},
    entryPoints: [request.entry],
    outfile: request.outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    sourcemap: true,
    logLevel: 'warning',
    plugins: [workspaceOnly(path.dirname(request.outfile), request.pure)],
  });
}

/**
 * The command `npm start` runs after building, as argv (package.json's `start` script, after its `&&`): the
 * benchmark and the end-to-end tests run the embedded registry with exactly these node flags.
 */
export function startCommand(root = REPO_ROOT): string[] {
  const script = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start;
  const command = script.split('&&').pop()?.trim().split(/\s+/) ?? [];
  if (command[0] !== 'node') throw new Error(`package.json's start script does not end by running node: ${script}`);
  return command;
}

/**
 * The node flags a distributed service runs with (the container image, compose, the Helm chart, tools/cluster): the
 * V8 marking triggers of `npm start`, which kept the gateway and the blob service from spending a third of their CPU
 * in the collector while streaming a blob (docs/benchmarks.md). Not PGlite's memory flags, which only the embedded
 * registry needs.
 */
export function serviceNodeFlags(root = REPO_ROOT): string[] {
  return startCommand(root).filter((arg) => arg.startsWith('--incremental-marking-'));
}

/** The command that runs a distributed service's bundle, as argv with a path relative to the repository root. */
export function serviceCommand(name: string, root = REPO_ROOT): string[] {
  return ['node', ...serviceNodeFlags(root), path.relative(root, serviceBundle(name, root).outfile)];
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--start-command') {
    console.log(startCommand().join(' '));
    return;
  }
  if (argv[0] === '--service-flags') {
    console.log(serviceNodeFlags().join(' '));
    return;
  }
  const known = bundleNames();
  const names = argv.length ? argv : known;
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) throw new Error(`no such bundle: ${unknown.join(', ')} (bundles: ${known.join(', ')})`);
  const started = performance.now();
  const commit = checkoutCommit();
  await Promise.all(names.map((name) => (name === CONSOLE_BUNDLE ? buildConsole() : bundle(bundleRequest(name), commit))));
  const outputs = names.map((n) => (n === CONSOLE_BUNDLE ? `dist/${n}/` : `dist/${n}/main.cjs`));
  console.log(`built ${outputs.join(', ')} in ${Math.round(performance.now() - started)} ms`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`build failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
