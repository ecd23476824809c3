/** What a process says while it opens its database: each step, with its time, so a slow first start never looks hung. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '@lading/config';
import { planMigrations, schemaVersionOf } from '@lading/metadata';
import type { Logger } from '@lading/telemetry';
import { REGISTRY_MIGRATIONS } from './migrations';
import { openMigratedDatabase } from './parts';

/** A logger that keeps its info lines (message and fields). */
function recordingLogger() {
  const lines: Array<{ msg: string; fields: Record<string, unknown> }> = [];
  const logger = {
    info: (fields: Record<string, unknown>, msg: string) => lines.push({ msg, fields }),
    warn: () => undefined,
  } as unknown as Logger;
  return { lines, logger };
}

describe('openMigratedDatabase', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-parts-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('says it is opening the database, then how many migrations it applied and the versions, each step with its time; then that the schema is up to date', async () => {
    const config = parseConfig({ database: { path: path.join(dir, 'metadata') } });
    const names = (await planMigrations(REGISTRY_MIGRATIONS)).map((m) => m.name);
    const version = schemaVersionOf(await planMigrations(REGISTRY_MIGRATIONS));

    const first = recordingLogger();
    await (await openMigratedDatabase(config, first.logger)).close();
    expect(first.lines.map((l) => l.msg)).toEqual([
      'opening the database (PGlite creates it on the first start: this takes a while)',
      'database open; migrating',
      `applied ${names.length} migrations: schema version 0 → ${version}`,
    ]);
    expect(first.lines[0].fields).toEqual({ driver: 'pglite' });
    expect(first.lines[1].fields).toEqual({ driver: 'pglite', ms: expect.any(Number) });
    expect(first.lines[2].fields).toEqual({ applied: names.length, migrations: names, from: 0, schemaVersion: version, ms: expect.any(Number) });

    const again = recordingLogger();
    await (await openMigratedDatabase(config, again.logger)).close();
    expect(again.lines.map((l) => l.msg)).toEqual([expect.stringMatching(/^opening the database/), 'database open; migrating', `the schema is up to date (version ${version})`]);
    expect(again.lines[2].fields).toEqual({ applied: 0, migrations: [], from: version, schemaVersion: version, ms: expect.any(Number) });

    const verifying = recordingLogger();
    await (await openMigratedDatabase(parseConfig({ database: { path: path.join(dir, 'metadata'), migrations: 'verify' } }), verifying.logger)).close();
    expect(verifying.lines.map((l) => l.msg)).toEqual([
      expect.stringMatching(/^opening the database/),
      'database open; verifying the schema',
      `schema version ${version} verified (database.migrations is verify: lading-migrate applies migrations)`,
    ]);
  });
});
