/** The metadata seam: a tiny SQL interface that both the PGlite and the pg adapters implement. */

/** The result of one statement. */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** Something that runs SQL: the database itself or an open transaction. */
export interface SqlExecutor {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
}

/** How a transaction is run. */
export interface TransactionOptions {
  /**
   * False: the transaction may resolve once committed, before its commit is on disk (PGlite's group commit skips its
   * wait; the next flush, which any later durable transaction makes, covers it). Only for a transaction whose loss
   * in a crash costs a repeat and nothing else, e.g. the outbox relay's marks (a lost mark is an event published
   * again, which at-least-once delivery allows). Default true; PostgreSQL commits every transaction durably.
   */
  awaitDurable?: boolean;
}

/** A Postgres database (PGlite or a real server). */
export interface Database extends SqlExecutor {
  /** The adapter's name, for logs. */
  readonly driverName: string;
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/** Checks that the database answers (a readiness probe): resolves when it does, rejects when it cannot be reached. */
export async function pingDatabase(db: SqlExecutor): Promise<void> {
  await db.query('SELECT 1');
}

/** Postgres error codes the registry reacts to. */
export const PG_ERRORS = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  /** PostgreSQL 18 (PGlite 0.5) reports an ON DELETE RESTRICT violation with this code instead of 23503. */
  restrictViolation: '23001',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  lockNotAvailable: '55P03',
} as const;

/** The SQLSTATE of a database error, if it has one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}

/** How many times `transactionRetryingDeadlocks` runs a transaction again after Postgres chose it as a deadlock's victim. */
export const DEADLOCK_RETRIES = 3;

/**
 * Runs `work` in one transaction, and again (up to `retries` times) when Postgres ends it as the victim of a deadlock.
 * The writes that change tags, manifests and repositories take their rows in one order, but a few pairs cannot (an
 * index push holds its children before its repository, as the collector requires, while a deletion of one of those
 * children holds the repository first): Postgres breaks such a cycle by failing one transaction, which then simply
 * runs again once the other has committed, instead of answering the client with an error. `work` must do nothing
 * but statements on `tx` (a rolled-back attempt leaves no trace).
 */
export async function transactionRetryingDeadlocks<T>(db: Database, work: (tx: SqlExecutor) => Promise<T>, retries = DEADLOCK_RETRIES): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.transaction(work);
    } catch (err) {
      if (sqlState(err) !== PG_ERRORS.deadlockDetected || attempt >= retries) throw err;
    }
  }
}

/**
 * The code given to errors that mean "the database cannot be reached right now"; the pg adapter also marks them
 * unavailable (`markUnavailable`, answered as 503 and retried later).
 */
export const DATABASE_UNAVAILABLE = 'EDBUNAVAILABLE';

const CONNECTION_SQLSTATES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);

/** True when an error means the database connection failed, not that a statement was wrong. */
export function isConnectionFailure(err: unknown): boolean {
  const code = sqlState(err);
  if (code && (CONNECTION_SQLSTATES.has(code) || CONNECTION_ERRNOS.has(code) || code === DATABASE_UNAVAILABLE)) return true;
  const message = String((err as Error)?.message ?? '');
  return /timeout exceeded when trying to connect|Connection terminated|connection is insecure|Client has encountered a connection error/i.test(message);
}
