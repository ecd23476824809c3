/**
 * A database of its own on the real PostgreSQL of `tools/infra`: tests and checks that need Postgres itself (row
 * locks, SKIP LOCKED, several pools or processes) run there without ever seeing each other's rows.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { infraSettings } from './infra';

/** A throwaway database: where it is, and how to drop it (closing every connection to it first). */
export interface ThrowawayDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function onServer(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * Drops a database with its connections. FORCE cannot end a backend of another role (an autovacuum worker that
 * happens to be on it: "must be a member of the role whose process is being terminated"), so that refusal is retried
 * a few times; such workers finish within moments.
 */
async function dropForcibly(serverUrl: string, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await onServer(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } catch (err) {
      if (attempt >= 10 || (err as { code?: string }).code !== '42501') throw err;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
}

/**
 * Creates an empty database `lading_<label>_<random>` (or `name`, dropped first if it exists) on the server of
 * `serverUrl`, by default the tools/infra one. The caller migrates it if it needs the schema.
 */
export async function createThrowawayDatabase(
  label: string,
  options: { serverUrl?: string; name?: string } = {},
): Promise<ThrowawayDatabase> {
  const serverUrl = options.serverUrl ?? infraSettings().databaseUrl;
  const name = options.name ?? `lading_${label}_${randomBytes(5).toString('hex')}`;
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
  if (options.name) await dropForcibly(serverUrl, name);
  await onServer(serverUrl, `CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => dropForcibly(serverUrl, name),
  };
}
