/**
 * `lading-migrate` (`node dist/migrate/main.cjs`, `npm run migrate`): the schema step of an upgrade, run once before
 * the services of a release start (a Helm pre-install/pre-upgrade hook, a compose one-shot), which then only verify
 * the schema (`database.migrations: verify`). It migrates whatever `database.migrations` says: that key is for the
 * services. Any number may run at once (the migration lock serialises them); on an embedded data directory it
 * takes the directory's lock, so it refuses while a registry runs there.
 */
import { openDatabase } from '@lading/metadata';
import { lockEmbeddedData, migrateSchema, runTask } from '@lading/runtime';

runTask(
  'migrate',
  "applies this release's database migrations (the schema step of an upgrade) and exits.",
  [
    "Without options it brings the configured database's schema up to this release's version, one migration",
    'transaction under an advisory lock (several at once apply each migration once), logs the versions and what it',
    'applied, and exits 0. It exits 1 without changing anything on a schema newer than this release (a newer release',
    'migrated it), when the database cannot be reached, or while a registry holds the embedded data directory.',
  ].join('\n'),
  async (config, logger) => {
    const lock = await lockEmbeddedData(config);
    try {
      const db = await openDatabase(config, (err) => logger.warn({ err }, 'a pooled database connection failed while idle'));
      try {
        await migrateSchema(db, logger);
      } finally {
        await db.close();
      }
    } finally {
      await lock.release();
    }
  },
);
