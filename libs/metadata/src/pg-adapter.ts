/** The `pg` adapter: a pool of connections to a real PostgreSQL server, for the distributed mode. */
import type pg from 'pg';
import { markUnavailable } from '@lading/oci';
import { DATABASE_UNAVAILABLE, Database, QueryResult, SqlExecutor, isConnectionFailure } from './database';

/** Settings of the pg adapter. */
export interface PgDatabaseOptions {
  url: string;
  poolSize: number;
  statementTimeoutMs: number;
  connectTimeoutMs: number;
  /** Reports errors of idle connections (a server restart), which would otherwise crash the process. */
  onIdleError?: (err: Error) => void;
}

/**
 * The `pg` driver, loaded when a pool is opened: PGlite (the embedded default) never needs it. `require` rather than
 * `import()`, so that OpenTelemetry's pg instrumentation, which hooks `require`, still patches it as it loads.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const loadPg = (): typeof pg => require('pg') as typeof pg;

const INT8_OID = 20;

/** Parses int8 as a JS number (sizes and offsets stay far below 2^53), everything else as pg does by default. */
const typeParsers = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID ? (value: string) => Number(value) : loadPg().types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/**
 * Marks connection-level failures with one code and as unavailable, so the HTTP layer answers 503 instead of 500.
 */
function classify(err: unknown): unknown {
  if (isConnectionFailure(err) && typeof err === 'object' && err !== null) {
    markUnavailable(Object.assign(err, { code: DATABASE_UNAVAILABLE, sqlState: (err as { code?: unknown }).code }));
  }
  return err;
}

/** The most distinct SQL texts prepared by name; the code's statements are a few hundred fixed strings. */
const PREPARED_LIMIT = 1000;

/** SQLSTATE of "cached plan must not change result type": a prepared `SELECT *` whose table changed columns. */
const CACHED_PLAN_CHANGED = '0A000';

/**
 * Names the statements with parameters, so that each connection parses and plans a text once and then only binds
 * and executes it (an unnamed statement is parsed and planned by the server on every call; for the pull path's
 * one-row lookups that was most of PostgreSQL's CPU). Texts beyond {@link PREPARED_LIMIT} run unnamed, so SQL built
 * at run time cannot grow every connection's statement cache without bound. A text whose prepared plan went stale
 * (its table changed under it) is forgotten and gets a new name, so it is prepared afresh on every connection.
 */
interface StatementNames {
  nameOf(sql: string): string | undefined;
  forget(sql: string): void;
}

function statementNames(): StatementNames {
  const names = new Map<string, string>();
  let issued = 0;
  return {
    nameOf(sql) {
      let name = names.get(sql);
      if (name === undefined && names.size < PREPARED_LIMIT) {
        name = `lading_${issued++}`;
        names.set(sql, name);
      }
      return name;
    },
    forget: (sql) => void names.delete(sql),
  };
}

function executor(target: pg.Pool | pg.PoolClient, names: StatementNames, inTransaction: boolean): SqlExecutor {
  const run = async (sql: string, params: unknown[] | undefined, retried: boolean): Promise<pg.QueryResult> => {
    const name = params && params.length > 0 ? names.nameOf(sql) : undefined;
    if (!name) return target.query(sql, params);
    try {
      return await target.query({ name, text: sql, values: params });
    } catch (err) {
      if ((err as { code?: string })?.code !== CACHED_PLAN_CHANGED) throw err;
      names.forget(sql);
      // In a transaction the error has aborted it; the caller's retry (or the next statement) prepares afresh.
      if (inTransaction || retried) throw err;
      return run(sql, params, true);
    }
  };
  return {
    async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
      try {
        const result = await run(sql, params, false);
        return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
      } catch (err) {
        throw classify(err);
      }
    },
  };
}

/** Opens a connection pool to PostgreSQL. */
export async function createPgDatabase(options: PgDatabaseOptions): Promise<Database> {
  const pool = new (loadPg().Pool)({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.statementTimeoutMs + 1000,
    idle_in_transaction_session_timeout: options.statementTimeoutMs * 2,
    // No JIT compilation: the registry's statements are short, and a plan the planner costs high (search's access
    // check at 100,000 repositories, costed at 1.3 million where jit_above_cost is 100,000) had 3.6 s of LLVM
    // compilation added to a 150 ms execution (docs/benchmarks.md, search at issue 22's scale).
    options: '-c jit=off',
    types: typeParsers,
  });
  pool.on('error', (err) => options.onIdleError?.(err));
  const names = statementNames();
  const root = executor(pool, names, false);
  return {
    driverName: 'postgres',
    query: root.query,
    async transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      const client = await pool.connect().catch((err) => Promise.reject(classify(err)));
      let broken = false;
      // A checked-out connection that dies between statements (a server restart while the work awaits something
      // else) emits 'error' on the client; unheard, that would crash the process. Its next statement fails instead.
      const onError = () => {
        broken = true;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await work(executor(client, names, true));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
        throw classify(err);
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    },
    async exec(sql: string): Promise<void> {
      await pool.query(sql);
    },
    close: () => pool.end(),
  };
}
