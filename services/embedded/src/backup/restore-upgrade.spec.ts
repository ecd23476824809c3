/**
 * A backup restores with a later Lading: an archive of a database one migration behind this version's schema is
 * restored under its own schema, then migrated forward, its rows intact.
 */
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '@lading/config';
import { Database, createPgliteDatabase, migrate, planMigrations } from '@lading/metadata';
import { REGISTRY_MIGRATIONS } from '@lading/runtime';
import { createFilesystemBlobStore } from '@lading/storage';
import { createLogger } from '@lading/telemetry';
import { prepareBackup } from './backup-stream';
import { restoreBackup } from './restore';

describe('restoring an archive of an older schema', () => {
  let work: string;
  let old: Database;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'lading-restore-upgrade-'));
  });
  afterAll(async () => {
    await old?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('loads it under its own schema, then applies the newer migrations', async () => {
    // A database as the previous release left it: every migration but the newest.
    const planned = await planMigrations(REGISTRY_MIGRATIONS);
    const previous = path.join(work, 'previous-migrations');
    await mkdir(previous);
    for (const m of planned.slice(0, -1)) await copyFile(m.file, path.join(previous, m.name));
    old = await createPgliteDatabase();
    await migrate(old, [{ owner: 'previous', dir: previous }]);
    await old.query(`INSERT INTO repositories (name) VALUES ('team/old'), ('team/older')`);

    const backup = await prepareBackup({
      db: old,
      store: await createFilesystemBlobStore(path.join(work, 'old-blobs')),
      // This database has no collector to hold.
      holdObjectDeletions: () => () => undefined,
      version: { name: 'lading', version: 'previous' },
      logger: createLogger({ service: 'test', level: 'silent' }),
      tmpDir: work,
    });
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of backup.stream()) chunks.push(chunk);
    } finally {
      await backup.close();
    }
    expect(backup.summary.schema.version).toBe(planned[planned.length - 2].name);

    const target = path.join(work, 'restored');
    const result = await restoreBackup(parseConfig({ data: { dir: target }, log: { level: 'silent', access: false } }), (async function* () {
      yield Buffer.concat(chunks);
    })());
    expect(result.upgradedWith).toEqual([planned[planned.length - 1].name]);

    const restored = await createPgliteDatabase(result.databasePath);
    try {
      const applied = (await restored.query<{ name: string }>(`SELECT name FROM schema_migrations ORDER BY name`)).rows.map((r) => r.name);
      expect(applied).toEqual(planned.map((m) => m.name));
      expect((await restored.query<{ name: string }>(`SELECT name FROM repositories ORDER BY name`)).rows.map((r) => r.name)).toEqual(['team/old', 'team/older']);
    } finally {
      await restored.close();
    }
  }, 120_000);
});
