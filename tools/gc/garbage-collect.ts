/**
 * The operator's garbage-collect command, on the configured database and store (LADING_* variables, LADING_CONFIG):
 *
 *   node --import tsx tools/gc/garbage-collect.ts --dry-run [--all] [--verbose] [--json]
 *       what the collector would delete now, and why (nothing is locked or changed); --all also evaluates reviews
 *       not yet due, --verbose lists what is kept, --json prints the plan as JSON
 *   node --import tsx tools/gc/garbage-collect.ts
 *       runs the retention sweep and every due review now, then prints what was done
 *
 * In the embedded mode the registry must be stopped first: PGlite serves one process at a time. A running
 * distributed gc service answers the same report at GET /gc/dry-run and its figures at GET /metrics.
 */
import { createUuidV7Generator } from '@lading/events';
import { createGcWorker, gcSettings, planCollection, renderPlan } from '@lading/gc';
import { migrate, openDatabase } from '@lading/metadata';
import { loadConfigOrExit } from '@lading/runtime';
import { openBlobStore } from '@lading/storage';
import { createLogger } from '@lading/telemetry';

const args = new Set(process.argv.slice(2));
const known = new Set(['--dry-run', '--all', '--verbose', '--json', '--help']);
const unknown = [...args].filter((a) => !known.has(a));
if (args.has('--help') || unknown.length > 0) {
  if (unknown.length > 0) process.stderr.write(`garbage-collect: unknown option ${unknown[0]}\n`);
  process.stderr.write('usage: garbage-collect [--dry-run [--all] [--verbose] [--json]]\n');
  process.exit(unknown.length > 0 ? 2 : 0);
}

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({ service: 'gc-cli', level: args.has('--json') ? 'silent' : 'warn' });
  if (config.database.driver === 'pglite') process.stderr.write('garbage-collect: embedded mode: the registry must not be running (PGlite serves one process)\n');
  const db = await openDatabase(config);
  try {
    await migrate(db);
    if (args.has('--dry-run')) {
      const plan = await planCollection(db, gcSettings(config), { includeNotDue: args.has('--all') });
      process.stdout.write(args.has('--json') ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan, args.has('--verbose')));
      return;
    }
    const store = await openBlobStore(config);
    const worker = createGcWorker({ db, store, config, logger, events: { source: '//cli/lading/gc', ids: createUuidV7Generator(), now: () => new Date() } });
    const swept = await worker.sweep();
    const steps = await worker.runUntilIdle();
    const c = worker.counters;
    const summary = {
      steps,
      swept,
      deleted: c.deleted,
      bytesFreed: c.bytesFreed,
      postponed: c.postponed,
      storageErrors: c.storageErrors,
      queues: await worker.queueStats(),
    };
    process.stdout.write(args.has('--json') ? `${JSON.stringify(summary, null, 2)}\n` : `garbage-collect: ${JSON.stringify(summary)}\n`);
  } finally {
    await db.close();
  }
}

main().catch((err) => {
  process.stderr.write(`garbage-collect: ${(err as Error)?.message ?? err}\n`);
  process.exit(1);
});
