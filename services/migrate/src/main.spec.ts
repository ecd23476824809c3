/**
 * lading-migrate and the schema refusals as an operator meets them: real processes (the sources on tsx, as
 * `npm run migrate` runs them) on a fresh database of the tools/infra PostgreSQL. lading-migrate migrates and exits
 * 0, again finds nothing to do; a registry on a database a newer release migrated, or in the verify mode on a schema
 * older than its own, exits 1 with one line on stderr naming both versions, and no stack. The tests run in order on
 * one database: empty, migrated, then migrated by a "newer release".
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { planMigrations, schemaVersionOf } from '@lading/metadata';
import { REGISTRY_MIGRATIONS } from '@lading/runtime';
import { REPO_ROOT, ThrowawayDatabase, createThrowawayDatabase } from '@lading/testing';

interface Exited {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs an entry file of the repository on tsx with only the given LADING_* environment, to its exit. */
function run(entry: string, env: Record<string, string>): Promise<Exited> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, ...out }));
  });
}

/** The messages of a process's JSON log lines. */
const messages = (stdout: string) =>
  stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => (JSON.parse(line) as { msg: string }).msg);

describe('lading-migrate and the refusals, as processes', () => {
  let fresh: ThrowawayDatabase;
  let dataDir: string;
  let schemaVersion: number;
  let migrations: number;
  let env: Record<string, string>;

  beforeAll(async () => {
    const planned = await planMigrations(REGISTRY_MIGRATIONS);
    schemaVersion = schemaVersionOf(planned);
    migrations = planned.length;
    fresh = await createThrowawayDatabase('migrate');
    dataDir = await mkdtemp(path.join(tmpdir(), 'lading-migrate-'));
    // The embedded registry on the postgres driver: the same start-up path as every distributed service.
    env = { LADING_DATABASE_DRIVER: 'postgres', LADING_DATABASE_URL: fresh.url, LADING_DATA_DIR: dataDir, LADING_HTTP_ADDR: '127.0.0.1:0', LADING_LOG_ACCESS: 'false' };
  });
  afterAll(async () => {
    await fresh.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const migrateCommand = () => run('services/migrate/src/main.ts', env);
  const registry = (extra: Record<string, string> = {}) => run('services/embedded/src/main.ts', { ...env, ...extra });

  /** A refusal: status 1, one line on stderr naming the process and the versions, no stack anywhere. */
  function expectRefusal(exited: Exited, process: string, line: RegExp): void {
    expect(exited.status).toBe(1);
    const lines = exited.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^lading-${process}: failed( to start)?: ${line.source}`));
    expect(`${exited.stdout}${exited.stderr}`).not.toMatch(/\n\s+at /);
  }

  it('a registry in the verify mode refuses the empty database, naming lading-migrate', async () => {
    expectRefusal(
      await registry({ LADING_DATABASE_MIGRATIONS: 'verify' }),
      'registry',
      new RegExp(`the database's schema is version 0, older than this Lading's schema version ${schemaVersion} \\(${migrations} migrations pending: .*\\); database\\.migrations is verify, so this process does not migrate: run lading-migrate`),
    );
  });

  it('migrates the database and exits 0, and finds nothing to do the second time', async () => {
    const first = await migrateCommand();
    expect([first.status, first.stderr]).toEqual([0, '']);
    expect(messages(first.stdout)).toContain(`applied ${migrations} migrations: schema version 0 → ${schemaVersion}`);
    const second = await migrateCommand();
    expect([second.status, second.stderr]).toEqual([0, '']);
    expect(messages(second.stdout)).toContain(`the schema is up to date (version ${schemaVersion})`);
  });

  it('on a database a newer release migrated, the registry and lading-migrate refuse with one line naming both versions', async () => {
    const client = new pg.Client({ connectionString: fresh.url });
    await client.connect();
    try {
      await client.query(`INSERT INTO schema_migrations (name) VALUES ('9999_from_a_newer_release.sql')`);
    } finally {
      await client.end();
    }
    const newer = new RegExp(`the database's schema is version 9999, newer than this Lading's schema version ${schemaVersion}: it has migrations this release does not know \\(9999_from_a_newer_release\\.sql\\)`);
    expectRefusal(await registry(), 'registry', newer);
    expectRefusal(await migrateCommand(), 'migrate', newer);
  });
});
