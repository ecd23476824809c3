/** Opens the database the configuration names: PGlite (embedded) or PostgreSQL (distributed). */
import path from 'node:path';
import { LadingConfig, durationMs } from '@lading/config';
import type { Database } from './database';
import { createPgDatabase } from './pg-adapter';
import { createPgliteDatabase } from './pglite-adapter';

/** Opens the configured database; `onIdleError` reports a pooled connection lost while idle. */
export async function openDatabase(config: LadingConfig, onIdleError?: (err: Error) => void): Promise<Database> {
  if (config.database.driver === 'postgres') {
    return createPgDatabase({
      url: config.database.url as string,
      poolSize: config.database.poolSize,
      statementTimeoutMs: durationMs(config.database.statementTimeout),
      connectTimeoutMs: durationMs(config.database.connectTimeout),
      onIdleError,
    });
  }
  return createPgliteDatabase(config.database.path ?? path.join(path.resolve(config.data.dir), 'metadata'), { fsync: config.storage.fsync });
}
