/** The `pg` adapter: a pool of connections to a real PostgreSQL server, for the distributed mode. */
import pg from 'pg';
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

const INT8_OID = 20;

/** Parses int8 as a JS number (sizes and offsets stay far below 2^53), everything else as pg does by default. */
const typeParsers = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** Marks connection-level failures with one code, so the HTTP layer answers 503 instead of 500. */
function classify(err: unknown): unknown {
  if (isConnectionFailure(err) && typeof err === 'object' && err !== null) {
    Object.assign(err, { code: DATABASE_UNAVAILABLE, sqlState: (err as { code?: unknown }).code });
  }
  return err;
}

function executor(target: pg.Pool | pg.PoolClient): SqlExecutor {
  return {
    async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
      try {
        const result = await target.query(sql, params as unknown[]);
        return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
      } catch (err) {
        throw classify(err);
      }
    },
  };
}

/** Opens a connection pool to PostgreSQL. */
export async function createPgDatabase(options: PgDatabaseOptions): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.statementTimeoutMs + 1000,
    idle_in_transaction_session_timeout: options.statementTimeoutMs * 2,
    types: typeParsers,
  });
  pool.on('error', (err) => options.onIdleError?.(err));
  const root = executor(pool);
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
        const result = await work(executor(client));
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
