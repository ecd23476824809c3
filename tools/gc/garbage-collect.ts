/**
 * The operator's garbage-collect command (`npm run gc -- [options]`), on the configured database and store
 * (LADING_* variables, LADING_CONFIG), or through a running embedded registry:
 *
 *   garbage-collect --dry-run [--all] [--verbose] [--json]
 *       what the collector would delete now, and why (nothing is locked or changed); --all also evaluates reviews
 *       not yet due, --verbose lists what is kept, --json prints the plan as JSON
 *   garbage-collect [--json]
 *       runs the retention sweep and every due review now, then prints what was done
 *   garbage-collect --registry http://127.0.0.1:5000 [--dry-run ...]
 *       asks the running registry to do either (POST /admin/v1/gc/collect, GET /admin/v1/gc/dry-run) with an
 *       admin's credentials: LADING_ADMIN_USER and LADING_ADMIN_PASSWORD, or --user NAME and --password-stdin
 *
 * A collection never runs beside a registry that holds the same data. In the embedded mode the command takes the
 * data directory's lock (the one the registry holds while it runs, see libs/runtime/src/data-dir-lock.ts): while a
 * registry holds it, the command refuses, naming the holder's pid, and points at --registry. In the distributed
 * mode there is nothing to hold: the command and any number of gc services share the queues in Postgres, and a gc
 * service answers the same report at GET /gc/dry-run and its figures at GET /gc/status.
 *
 * Exit status: 0 done, 1 refused or failed (a held data directory, a registry that refused or could not be reached),
 * 2 bad usage. Credentials are never printed.
 */
import { parseArgs } from 'node:util';
import type { LadingConfig } from '@lading/config';
import { createUuidV7Generator } from '@lading/events';
import { GcPlan, collectNow, createGcWorker, gcSettings, planCollection, renderPlan } from '@lading/gc';
import { openDatabase } from '@lading/metadata';
import { DataDirLockedError, loadConfigOrExit, lockEmbeddedData, parseListenAddress, prepareSchema, versionLine } from '@lading/runtime';
import { openBlobStore } from '@lading/storage';
import { createLogger } from '@lading/telemetry';

const USAGE = `usage: garbage-collect [--dry-run [--all] [--verbose]] [--json]
       garbage-collect --registry URL [--user NAME] [--password-stdin] [--dry-run [--all] [--verbose]] [--json]

  --dry-run          print what a collection would delete now and why; change nothing
  --all              with --dry-run: also evaluate reviews that are not due yet
  --verbose          with --dry-run: also list what is kept
  --json             print the plan or the collection's summary as JSON
  --registry URL     collect (or report) through a running embedded registry's admin API instead of opening its data;
                     needs an admin: LADING_ADMIN_USER and LADING_ADMIN_PASSWORD, or --user and --password-stdin
  --user NAME        the admin's name (default: LADING_ADMIN_USER)
  --password-stdin   read the admin's password (or personal access token) from standard input
  --help             show this help
  --version          print the version and exit

Configuration: the registry's own, from the YAML file named by LADING_CONFIG and LADING_* variables (the
Configuration table of README.md).

Embedded mode: while a registry runs on the same data directory, a collection without --registry is refused (the
registry holds the directory's lock); run it with --registry, or stop the registry first.
`;

/** A refusal or failure to report in one line: exit status 1. */
class Refused extends Error {}

function parse() {
  try {
    return parseArgs({
      options: {
        'dry-run': { type: 'boolean' },
        all: { type: 'boolean' },
        verbose: { type: 'boolean' },
        json: { type: 'boolean' },
        registry: { type: 'string' },
        user: { type: 'string' },
        'password-stdin': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`garbage-collect: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

const options = parse();
if (options.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (options.version) {
  process.stdout.write(`${versionLine()}\n`);
  process.exit(0);
}

function printPlan(plan: GcPlan): void {
  process.stdout.write(options.json ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan, options.verbose === true));
}

function printCollection(summary: unknown): void {
  process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : `garbage-collect: ${JSON.stringify(summary)}\n`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Asks a running registry to collect (or report) through its admin API. */
async function throughRegistry(config: LadingConfig, registry: string): Promise<void> {
  let base: URL;
  try {
    base = new URL(registry);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http');
  } catch {
    process.stderr.write(`garbage-collect: --registry must be an http(s) URL such as http://127.0.0.1:5000\n`);
    process.exit(2);
  }
  const user = options.user ?? config.admin.user;
  const password = options['password-stdin'] ? await readStdin() : config.admin.password;
  if (!user || !password) {
    process.stderr.write('garbage-collect: --registry needs an admin: LADING_ADMIN_USER and LADING_ADMIN_PASSWORD, or --user and --password-stdin\n');
    process.exit(2);
  }
  const all = options.all ? '?all=1' : '';
  const [method, route] = options['dry-run'] ? ['GET', `/admin/v1/gc/dry-run${all}`] : ['POST', '/admin/v1/gc/collect'];
  const url = new URL(route, base);
  let res: Response;
  try {
    res = await fetch(url, { method, headers: { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`, Accept: 'application/json' } });
  } catch (err) {
    throw new Refused(`cannot reach ${base.origin}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text.slice(0, 200);
    try {
      const error = (JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> }).errors?.[0];
      if (error) message = `${error.code}: ${error.message}`;
    } catch {
      // not the OCI envelope: the first bytes will do
    }
    const hint = res.status === 401 || res.status === 403 ? ' (the admin API needs an admin\'s credentials)' : res.status === 404 ? ' (is it an embedded registry of this version?)' : '';
    throw new Refused(`${base.origin} answered ${res.status}: ${message}${hint}`);
  }
  const body = JSON.parse(text) as unknown;
  if (options['dry-run']) printPlan(body as GcPlan);
  else printCollection(body);
}

/** The registry's own address, for the hint that says how to collect through it. */
function registryUrl(config: LadingConfig): string {
  const { host, port } = parseListenAddress(config.http.addr);
  const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${local}:${port}`;
}

/** Collects (or reports) on the configured data itself, holding its lock for the whole run. */
async function onTheData(config: LadingConfig): Promise<void> {
  let lock;
  try {
    lock = await lockEmbeddedData(config);
  } catch (err) {
    if (!(err instanceof DataDirLockedError)) throw err;
    throw new Refused(`refused: ${err.message}. Collect through that registry instead: garbage-collect --registry ${registryUrl(config)} (with an admin's credentials)`);
  }
  try {
    const logger = createLogger({ service: 'gc-cli', level: options.json ? 'silent' : 'warn' });
    const db = await openDatabase(config);
    try {
      await prepareSchema(db, config, logger);
      if (options['dry-run']) {
        printPlan(await planCollection(db, gcSettings(config), { includeNotDue: options.all === true }));
        return;
      }
      const store = await openBlobStore(config);
      const worker = createGcWorker({ db, store, config, logger, events: { source: '//cli/lading/gc', ids: createUuidV7Generator(), now: () => new Date() } });
      printCollection(await collectNow(worker));
    } finally {
      await db.close();
    }
  } finally {
    await lock.release();
  }
}

async function main(): Promise<void> {
  if ((options.user !== undefined || options['password-stdin']) && options.registry === undefined) {
    process.stderr.write('garbage-collect: --user and --password-stdin go with --registry\n');
    process.exit(2);
  }
  const config = loadConfigOrExit();
  if (options.registry !== undefined) await throughRegistry(config, options.registry);
  else await onTheData(config);
}

main().catch((err) => {
  process.stderr.write(`garbage-collect: ${(err as Error)?.message ?? err}\n`);
  process.exit(1);
});
