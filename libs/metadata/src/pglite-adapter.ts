/**
 * The PGlite adapter: Postgres compiled to WebAssembly, in-process, for the embedded mode and fast tests.
 *
 * PGlite's own `query` runs every call as six separate trips into the WebAssembly backend (Parse, Describe, Bind,
 * Describe, Execute, Sync), re-parsing and re-planning the statement each time. This adapter prepares each distinct
 * SQL text once, as a named statement, and then runs it as ONE trip (Bind, Execute, Sync): several times less work
 * per statement on the one connection that every request of the embedded registry shares.
 *
 * Invariant: every use of the PGlite instance goes through `lock`, one statement or one whole transaction at a time,
 * as PGlite's own `query` and `transaction` do (they are not used here, except `exec`, inside the lock).
 */
import { execFile } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type Extension, Mutex, PGlite, TransactionAbortedError, protocol, types } from '@electric-sql/pglite';
import type { Database, QueryResult, SqlExecutor } from './database';
import { createPgliteFilesystem, durabilityStartParams, type PgliteDurabilityOptions, syncCreatedTree } from './pglite-durability';

const wire = protocol.serialize;

/** Postgres settings for the embedded database, which holds metadata only (kilobytes per image). */
const START_SETTINGS: Record<string, string> = {
  /**
   * Postgres' default (128 MB) is most of the process's memory once touched, and PGlite touches all of it at start
   * (each megabyte here is a megabyte of resident memory at rest); the metadata's working set is a few megabytes,
   * the operating system's page cache still holds the data files, and a block read from it is one pread. 4 MB (512
   * buffers) idles 12 MB lower than 16 MB with the same push and pull rates (docs/benchmarks.md, memory of the
   * embedded process at rest). WAL buffers follow it (1/32, the minimum of 64 kB).
   */
  shared_buffers: '4MB',
};

/** How many distinct SQL texts stay prepared; the registry has a few hundred, so this only bounds the unexpected. */
const STATEMENT_CACHE_SIZE = 1000;

/** SQLSTATEs that mean a prepared statement no longer fits the schema (dropped, or its result type changed). */
const STALE_STATEMENT = new Set(['0A000', '26000']);

/**
 * Where a statement runs: on its own, in an open transaction, or first in a transaction, sent in one trip with the
 * transaction's BEGIN (so a transaction costs no trip of its own, and one that ran no statement costs none at all).
 */
type StatementPlace = 'alone' | 'transaction' | 'first-in-transaction';

/** A prepared statement: its name on the connection, its parameters' types and its result columns. */
interface PreparedStatement {
  name: string;
  paramTypes: number[];
  fields: Array<{ name: string; typeId: number; parse: ((text: string, typeId: number) => unknown) | undefined }>;
}

type BackendMessage = { name: string };

/** A statement's prepared form no longer fits the schema; `cause` is the database's error. */
class StaleStatementError extends Error {
  constructor(override readonly cause: unknown) {
    super('prepared statement is stale');
  }
}

const unwrapStale = (err: unknown): unknown => (err instanceof StaleStatementError ? err.cause : err);
type RowDescription = BackendMessage & { fields: Array<{ name: string; dataTypeID: number }> };
type DataRow = BackendMessage & { fields: Array<string | null> };
type CommandComplete = BackendMessage & { text: string };
type ParameterDescription = BackendMessage & { dataTypeIDs: number[] };

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** bytea as `\x` hex through Buffer: PGlite's own (de)serialiser goes byte by byte through arrays of strings. */
function byteaToText(value: unknown): string {
  if (!(value instanceof Uint8Array)) throw new Error('Invalid input for bytea type');
  return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
}

function byteaFromText(text: string): Buffer {
  return Buffer.from(text.slice(2), 'hex');
}

/** The affected or returned row count of a command tag (`INSERT 0 3`, `UPDATE 2`, `SELECT 5`), if it has one. */
function tagCount(tag: string): number | undefined {
  const last = tag.slice(tag.lastIndexOf(' ') + 1);
  const count = Number.parseInt(last, 10);
  return Number.isNaN(count) ? undefined : count;
}

/** Runs statements on one PGlite instance through cached prepared statements; callers hold the lock. */
class StatementRunner {
  private readonly statements = new Map<string, PreparedStatement>();
  private nextName = 0;

  /**
   * @param begin the simple-protocol text that opens a transaction (with group commit, it also makes the
   *   transaction's COMMIT asynchronous: the adapter waits for a shared flush instead).
   */
  constructor(
    private readonly db: PGlite,
    private readonly begin = 'BEGIN',
  ) {}

  private parserOf(typeId: number): PreparedStatement['fields'][number]['parse'] {
    if (typeId === types.INT8) return (text) => Number(text);
    if (typeId === types.BYTEA) return byteaFromText;
    return this.db.parsers[typeId];
  }

  private serialize(value: unknown, typeId: number | undefined): string | null {
    if (value === null || value === undefined) return null;
    if (typeId === types.BYTEA) return byteaToText(value);
    const serializer = typeId === undefined ? undefined : this.db.serializers[typeId];
    return serializer ? serializer(value) : String(value);
  }

  private async prepare(sql: string): Promise<PreparedStatement> {
    const name = `lading_${this.nextName++}`;
    const { messages } = await this.db.execProtocol(concat([wire.parse({ name, text: sql }), wire.describe({ type: 'S', name }), wire.sync()]), {
      syncToFs: false,
    });
    let paramTypes: number[] = [];
    let fields: PreparedStatement['fields'] = [];
    for (const message of messages as BackendMessage[]) {
      if (message.name === 'parameterDescription') paramTypes = (message as ParameterDescription).dataTypeIDs;
      else if (message.name === 'rowDescription') {
        fields = (message as RowDescription).fields.map((f) => ({ name: f.name, typeId: f.dataTypeID, parse: this.parserOf(f.dataTypeID) }));
      }
    }
    const statement = { name, paramTypes, fields };
    this.statements.set(sql, statement);
    if (this.statements.size > STATEMENT_CACHE_SIZE) {
      const [oldestSql, oldest] = this.statements.entries().next().value as [string, PreparedStatement];
      this.statements.delete(oldestSql);
      await this.close(oldest.name);
    }
    return statement;
  }

  private async close(name: string): Promise<void> {
    await this.db.execProtocol(concat([wire.close({ type: 'S', name }), wire.sync()]), { syncToFs: false, throwOnError: false });
  }

  /**
   * Runs one statement where `place` says. A statement on its own that failed because the schema changed under its
   * prepared form (a failed statement changed nothing) is prepared afresh and run once more; in a transaction the
   * error stands, as the transaction is aborted.
   */
  async query<R>(sql: string, params: unknown[] | undefined, place: StatementPlace): Promise<QueryResult<R>> {
    try {
      return await this.run<R>(sql, params, place);
    } catch (err) {
      if (place !== 'alone' || !(err instanceof StaleStatementError)) throw unwrapStale(err);
      return this.run<R>(sql, params, place).catch((again: unknown) => Promise.reject(unwrapStale(again)));
    }
  }

  private async run<R>(sql: string, params: unknown[] | undefined, place: StatementPlace): Promise<QueryResult<R>> {
    let statement = this.statements.get(sql);
    if (statement) {
      // Most recently used last: the cache evicts from the front.
      this.statements.delete(sql);
      this.statements.set(sql, statement);
    } else {
      statement = await this.prepare(sql);
    }
    const values = (params ?? []).map((value, i) => this.serialize(value, statement.paramTypes[i]));
    let messages: BackendMessage[];
    try {
      const begin = place === 'first-in-transaction' ? [wire.query(this.begin)] : [];
      ({ messages } = await this.db.execProtocol(concat([...begin, wire.bind({ statement: statement.name, values }), wire.execute({}), wire.sync()]), {
        // A statement on its own ends with the sync to the filesystem that PGlite does after each query; a
        // transaction's statements leave it to COMMIT.
        syncToFs: place === 'alone',
      }));
    } catch (err) {
      if (!STALE_STATEMENT.has(String((err as { code?: unknown }).code))) throw err;
      if (this.statements.get(sql) === statement) this.statements.delete(sql);
      await this.close(statement.name);
      throw new StaleStatementError(err);
    }
    const rows: R[] = [];
    let rowCount: number | undefined;
    const fields = statement.fields;
    for (const message of messages) {
      if (message.name === 'dataRow') {
        const values = (message as DataRow).fields;
        const row: Record<string, unknown> = {};
        for (let i = 0; i < fields.length; i++) {
          const text = values[i];
          const field = fields[i];
          row[field.name] = text === null ? null : field.parse ? field.parse(text, field.typeId) : text;
        }
        rows.push(row as R);
      } else if (message.name === 'commandComplete') {
        rowCount = tagCount((message as CommandComplete).text);
      }
    }
    return { rows, rowCount: rowCount ?? rows.length };
  }

  /** Runs a simple-protocol command (BEGIN, COMMIT, ROLLBACK); resolves with its command tag. */
  async command(sql: string, syncToFs: boolean): Promise<string> {
    const { messages } = await this.db.execProtocol(wire.query(sql), { syncToFs });
    const complete = (messages as BackendMessage[]).find((m) => m.name === 'commandComplete') as CommandComplete | undefined;
    return complete?.text ?? '';
  }

  /**
   * Commits the open transaction, asking `question` (a statement with no parameters and one boolean column, e.g.
   * whether the transaction wrote) first, in the same trip into the backend; resolves with COMMIT's command tag and
   * the answer. When the question fails (the transaction was aborted) the answer is false, and COMMIT rolls back.
   */
  async commitAsking(question: string): Promise<{ tag: string; answer: boolean }> {
    let statement: PreparedStatement;
    try {
      statement = this.statements.get(question) ?? (await this.prepare(question));
    } catch {
      return { tag: await this.command('COMMIT', true), answer: false };
    }
    const { messages } = await this.db.execProtocol(concat([wire.bind({ statement: statement.name, values: [] }), wire.execute({}), wire.sync(), wire.query('COMMIT')]), {
      syncToFs: true,
      throwOnError: false,
    });
    let answer = false;
    let tag = '';
    // The question's messages come before the first ReadyForQuery, COMMIT's before the second.
    let ready = 0;
    for (const message of messages as BackendMessage[]) {
      if (message.name === 'readyForQuery') ready++;
      else if (ready === 0 && message.name === 'dataRow') answer = (message as DataRow).fields[0] === 't';
      else if (ready === 1 && message.name === 'commandComplete') tag = (message as CommandComplete).text;
      else if (ready === 1 && message.name === 'error') throw message;
    }
    return { tag, answer };
  }

  /** Forgets every prepared statement (after a script that may have changed the schema). */
  async reset(): Promise<void> {
    this.statements.clear();
    await this.command('DEALLOCATE ALL', true);
  }
}

/** The start-up parameters: PGlite's defaults, fsync on or off (pglite-durability), plus START_SETTINGS. */
function startParams(fsync: boolean): string[] {
  const settings = Object.entries(START_SETTINGS).flatMap(([key, value]) => ['-c', `${key}=${value}`]);
  return [...durabilityStartParams(PGlite.defaultStartParams, fsync), ...settings];
}

/** Whether `dataDir` holds a database already (PGlite's own test: Postgres' `PG_VERSION` file). */
async function holdsDatabase(dataDir: string): Promise<boolean> {
  try {
    await access(path.join(dataDir, 'PG_VERSION'));
    return true;
  } catch {
    return false;
  }
}

/** The child process that creates a database: opens PGlite on the directory (which runs initdb) and closes it. */
const INITIALISE_SCRIPT = `
const [moduleId, dataDir, startParams] = process.argv.slice(1);
const { PGlite } = require(moduleId);
// PGlite's file system fails with WASI error numbers, in a plain object that String() prints as [object Object].
const WASI_ERRNO = { 2: 'EACCES', 44: 'ENOENT', 51: 'ENOSPC: no space left on device', 54: 'ENOTDIR', 63: 'EPERM', 69: 'EROFS: read-only file system' };
(async () => {
  const db = new PGlite(dataDir, { startParams: JSON.parse(startParams) });
  await db.waitReady;
  await db.close();
})().catch((err) => {
  if (err instanceof Error) console.error(err.stack);
  else if (err && typeof err.errno === 'number') console.error(WASI_ERRNO[err.errno] || 'file system error ' + err.errno);
  else console.error(require('node:util').inspect(err, { depth: 4 }));
  process.exit(1);
});
`;

/**
 * Creates the database in `dataDir` in a child process. Creating one runs initdb and a second Postgres in
 * WebAssembly, whose memory (over half a gigabyte) a process keeps long after: done here, the registry's process
 * only ever opens an existing database and stays at a fraction of that.
 */
function initialiseInChild(dataDir: string, params: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['-e', INITIALISE_SCRIPT, require.resolve('@electric-sql/pglite'), dataDir, JSON.stringify(params)],
      { maxBuffer: 4 << 20 },
      (err, _stdout, stderr) => (err ? reject(new Error(`creating the PGlite database in ${dataDir} failed: ${stderr || err.message}`)) : resolve()),
    );
  });
}

/**
 * The Postgres extensions the schema uses, loaded into every PGlite instance the registry opens (a migration's
 * `CREATE EXTENSION` finds them there): `pg_trgm` for search's trigram indexes. A real PostgreSQL ships them.
 */
const EXTENSIONS: Record<string, Extension> = {
  // The package's types for its contrib entry points are ESM-only, its CommonJS build is there: required, typed here.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  pg_trgm: (require('@electric-sql/pglite/contrib/pg_trgm') as { pg_trgm: Extension }).pg_trgm,
};

/** Opens PGlite on `dataDir` (creating the database first when there is none), or in memory. */
async function openPglite(dataDir: string | undefined, durability: PgliteDurabilityOptions): Promise<PGlite> {
  // In memory there is nothing to flush.
  const fsync = dataDir !== undefined && durability.fsync !== false;
  const options = { startParams: startParams(fsync), extensions: EXTENSIONS };
  if (dataDir) {
    await mkdir(dataDir, { recursive: true });
    if (!(await holdsDatabase(dataDir))) {
      await initialiseInChild(dataDir, options.startParams);
      if (fsync) syncCreatedTree(dataDir, durability.fsyncFd);
    }
    const db = new PGlite({ fs: createPgliteFilesystem(dataDir, { ...durability, fsync }), ...options });
    await db.waitReady;
    return db;
  }
  // The options object form: `new PGlite(undefined, options)` (in memory) would drop the options.
  const db = new PGlite({ dataDir, ...options });
  await db.waitReady;
  return db;
}

/** Flushes the WAL written so far to disk in one statement (Postgres 17+: a non-transactional message with flush). */
const FLUSH_WAL_SQL = `SELECT pg_logical_emit_message(false, 'lading.flush', '', true)`;
/** Whether the open transaction wrote anything (only a transaction that wrote has an xid). */
const WROTE_SQL = `SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS wrote`;

/**
 * Group commit for the one-connection embedded database. Each fsync blocks the event loop (PGlite runs Postgres on
 * it) and holds the database's lock, so a flush per COMMIT (~3 ms here, ~20 per pushed image) bounds the whole
 * registry's writes. Instead, transactions commit asynchronously (`synchronous_commit` off for the transaction), are
 * numbered in commit order, and wait for a flush that ran after their COMMIT: one flush covers every transaction
 * committed before it, however many wait. A transaction's caller still hears of it only once it is on disk.
 */
class GroupCommit {
  private committed = 0;
  private flushedUpTo = 0;
  private waiting: Array<{ seq: number; resolve: () => void; reject: (err: unknown) => void }> = [];
  private flushing = false;

  /** @param flushAll runs the flush under the database's lock, calling `mark` first (inside the lock). */
  constructor(private readonly flushAll: (mark: () => void) => Promise<void>) {}

  /** Numbers a COMMIT that just returned (call inside the database's lock). */
  recordCommit(): number {
    return ++this.committed;
  }

  /** Resolves once a flush that started after COMMIT number `seq` has reached the disk. */
  durable(seq: number): Promise<void> {
    if (seq <= this.flushedUpTo) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.push({ seq, resolve, reject });
      if (!this.flushing) void this.flushWhileWaited();
    });
  }

  private async flushWhileWaited(): Promise<void> {
    this.flushing = true;
    try {
      while (this.waiting.length > 0) {
        let covers = 0;
        try {
          await this.flushAll(() => {
            covers = this.committed;
          });
        } catch (err) {
          const failed = this.waiting;
          this.waiting = [];
          for (const waiter of failed) waiter.reject(err);
          continue;
        }
        this.flushedUpTo = Math.max(this.flushedUpTo, covers);
        const still: typeof this.waiting = [];
        for (const waiter of this.waiting) {
          if (waiter.seq <= this.flushedUpTo) waiter.resolve();
          else still.push(waiter);
        }
        this.waiting = still;
      }
    } finally {
      this.flushing = false;
    }
  }
}

/**
 * Opens (creating if needed) a PGlite database in `dataDir`, or in memory when `dataDir` is undefined. On disk, a
 * statement on its own is flushed before it returns and a transaction that wrote before `transaction` resolves (by
 * group commit: one flush for all transactions committed meanwhile), unless `durability.fsync` is false
 * (pglite-durability).
 */
export async function createPgliteDatabase(dataDir?: string, durability: PgliteDurabilityOptions = {}): Promise<Database> {
  const db = await openPglite(dataDir, durability);
  const durable = dataDir !== undefined && durability.fsync !== false;
  const runner = new StatementRunner(db, durable ? 'BEGIN; SET LOCAL synchronous_commit TO off' : 'BEGIN');
  const lock = new Mutex();
  const ensureOpen = () => {
    if (db.closed) throw new Error('the PGlite database is closed');
  };
  const groupCommit = durable
    ? new GroupCommit((mark) =>
        lock.runExclusive(async () => {
          ensureOpen();
          mark();
          await runner.query(FLUSH_WAL_SQL, undefined, 'alone');
        }),
      )
    : undefined;

  return {
    driverName: 'pglite',
    query: <R>(sql: string, params?: unknown[]) =>
      lock.runExclusive(() => {
        ensureOpen();
        return runner.query<R>(sql, params, 'alone');
      }),
    transaction: async (work, options) => {
      const { result, commitSeq } = await lock.runExclusive(async () => {
        ensureOpen();
        let open = true;
        // BEGIN goes with the first statement; from then on (even if that statement fails) there is a transaction.
        // Statements run one after the other in the order they were asked for, even when asked for together.
        let begun = false;
        let previous: Promise<unknown> = Promise.resolve();
        const tx: SqlExecutor = {
          query: <R>(sql: string, params?: unknown[]) => {
            if (!open) return Promise.reject(new Error('the transaction is closed'));
            const next = previous.then(() => {
              const place = begun ? 'transaction' : 'first-in-transaction';
              begun = true;
              return runner.query<R>(sql, params, place);
            });
            previous = next.catch(() => undefined);
            return next;
          },
        };
        let result;
        try {
          result = await work(tx);
          await previous;
        } catch (err) {
          await previous;
          open = false;
          if (begun) await runner.command('ROLLBACK', true).catch(() => undefined);
          throw err;
        }
        open = false;
        if (!begun) return { result, commitSeq: undefined };
        // Only a transaction that wrote needs a flush; in an aborted one the question fails and COMMIT rolls back.
        // The question and COMMIT go in one trip.
        const { tag, answer: wrote } = groupCommit ? await runner.commitAsking(WROTE_SQL) : { tag: await runner.command('COMMIT', true), answer: false };
        // COMMIT of a transaction that a failed statement aborted rolls it back instead (its tag says so).
        if (tag === 'ROLLBACK') throw new TransactionAbortedError();
        return { result, commitSeq: wrote ? groupCommit?.recordCommit() : undefined };
      });
      if (commitSeq !== undefined && options?.awaitDurable !== false) await groupCommit?.durable(commitSeq);
      return result;
    },
    exec: (sql) =>
      lock.runExclusive(async () => {
        ensureOpen();
        await db.exec(sql);
        await runner.reset();
      }),
    close: () => lock.runExclusive(() => db.close()),
  };
}
