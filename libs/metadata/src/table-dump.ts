/**
 * A logical dump of the database's rows, and its load into a database of the same schema: what a backup of the
 * embedded mode holds instead of PGlite's files, so that it survives a PGlite (and Postgres major) upgrade and can be
 * checked row by row. Every table of the current schema is dumped, whichever lib owns it (a table added tomorrow is
 * in tomorrow's backups without a change here), except the ones named in `exclude`.
 *
 * Consistency: the dump reads inside one REPEATABLE READ transaction (`inSnapshot`), so it is one instant of the
 * database: on Postgres without blocking writers, on PGlite (one connection, one transaction at a time) by holding
 * the database for as long as the dump takes, which is why it writes to a local sink and reads block range by block
 * range (each statement's rows in memory, not the table's).
 *
 * Rows travel as Postgres' own text form of the whole row (`row::text`), read back with a cast to the table's row
 * type: every column type (bytea, jsonb, timestamptz, arrays, uuids) comes back exactly, by the type's own input
 * function. This needs the same columns in the same order on both sides: the loader's schema must be the dumper's
 * (the same migrations applied). Generated columns are dumped with the row and computed again on load.
 *
 * The dump is a sequence of lines (no line breaks inside one), each a JSON value:
 *   {"table":"<name>"}                   the rows that follow are this table's
 *   "<row text>"                         one row
 *   {"sequence":"<name>","value":<n>}    a sequence's last value (omitted for one never used)
 */
import type { Database, SqlExecutor } from './database';

/** What a dump held: rows per table and the sequences' values. */
export interface DumpCounts {
  tables: Record<string, number>;
  sequences: Record<string, number>;
}

/** Options of `dumpTables`. */
export interface DumpOptions {
  /** Tables whose rows are left out (their table is still listed, empty). */
  exclude?: readonly string[];
  /** Heap blocks read per statement (default 32: a quarter megabyte of rows, plus what they keep out of line). */
  pageBlocks?: number;
}

/** The alias a dumped row goes by in the dump's query (a table with a column of this name is refused). */
const ROW_ALIAS = 'lading_dump_row';

/** A quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The tables of the current schema, by name. Partitioned tables are refused: their rows would be dumped twice. */
async function listTables(db: SqlExecutor): Promise<string[]> {
  const r = await db.query<{ name: string; kind: string }>(
    `SELECT c.relname AS name, c.relkind::text AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname COLLATE "C"`,
  );
  const partitioned = r.rows.filter((t) => t.kind === 'p').map((t) => t.name);
  if (partitioned.length > 0) throw new Error(`the dump does not handle partitioned tables (${partitioned.join(', ')})`);
  return r.rows.map((t) => t.name);
}

/** A table's columns in order, with whether each is generated. */
async function listColumns(db: SqlExecutor, table: string): Promise<Array<{ name: string; generated: boolean }>> {
  const r = await db.query<{ name: string; generated: boolean }>(
    `SELECT a.attname AS name, a.attgenerated <> '' AS generated FROM pg_attribute a
      WHERE a.attrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = $1)
        AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [table],
  );
  return r.rows;
}

/**
 * Runs `work` in one REPEATABLE READ, READ ONLY transaction: everything it reads is one snapshot of the database.
 */
export function inSnapshot<T>(db: Database, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    return work(tx);
  });
}

/**
 * Dumps every table of the current schema (rows of `exclude`d ones left out) and the sequences' values, as lines
 * given to `write` in order. Call it inside `inSnapshot` for a consistent dump.
 */
export async function dumpTables(tx: SqlExecutor, write: (line: string) => Promise<void>, options: DumpOptions = {}): Promise<DumpCounts> {
  const exclude = new Set(options.exclude ?? []);
  const pageBlocks = options.pageBlocks ?? 32;
  const counts: DumpCounts = { tables: {}, sequences: {} };
  const blockSize = Number((await tx.query<{ size: string }>(`SELECT current_setting('block_size') AS size`)).rows[0].size);
  for (const table of await listTables(tx)) {
    if ((await listColumns(tx, table)).some((c) => c.name === ROW_ALIAS)) throw new Error(`table ${table} has a column named ${ROW_ALIAS}`);
    await write(JSON.stringify({ table }));
    counts.tables[table] = 0;
    if (exclude.has(table)) continue;
    // Pages by ranges of heap blocks (a TID range scan: each block read once, no sort). Every row the snapshot sees
    // lies in a block that existed when it was taken, so the table's size read now covers them all.
    const size = await tx.query<{ bytes: number }>(`SELECT pg_relation_size($1::regclass) AS bytes`, [quoteIdent(table)]);
    const blocks = Math.ceil(Number(size.rows[0].bytes) / blockSize);
    const sql = `SELECT ${ROW_ALIAS}::text AS row FROM ${quoteIdent(table)} AS ${ROW_ALIAS} WHERE ctid >= $1::tid AND ctid < $2::tid`;
    for (let block = 0; block < blocks; block += pageBlocks) {
      const page = await tx.query<{ row: string }>(sql, [`(${block},0)`, `(${block + pageBlocks},0)`]);
      for (const { row } of page.rows) await write(JSON.stringify(row));
      counts.tables[table] += page.rows.length;
    }
  }
  const sequences = await tx.query<{ name: string; value: string | number | null }>(
    `SELECT sequencename AS name, last_value AS value FROM pg_sequences WHERE schemaname = current_schema() ORDER BY sequencename COLLATE "C"`,
  );
  for (const { name, value } of sequences.rows) {
    if (value === null) continue;
    counts.sequences[name] = Number(value);
    await write(JSON.stringify({ sequence: name, value: Number(value) }));
  }
  return counts;
}

/** A dump line that cannot be loaded. */
export class DumpFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DumpFormatError';
  }
}

/** Rows inserted per statement, at most; a batch is also cut at BATCH_BYTES of row text. */
const BATCH_ROWS = 500;
const BATCH_BYTES = 4 << 20;

/**
 * Loads a dump into `db`, whose schema must be the dumper's, in one transaction: every table of the schema is
 * emptied, then filled with the dump's rows (foreign keys and triggers are not enforced while loading, as in
 * pg_dump's data-only restores: the rows were consistent where they came from), and the sequences are set.
 * Resolves with what it loaded; throws `DumpFormatError` on a line it does not understand or a table the schema
 * does not have, leaving the database as it was.
 */
export async function loadTables(db: Database, lines: AsyncIterable<string>): Promise<DumpCounts> {
  return db.transaction(async (tx) => {
    await tx.query('SET LOCAL session_replication_role = replica');
    const tables = await listTables(tx);
    if (tables.length > 0) await tx.query(`TRUNCATE ${tables.map(quoteIdent).join(', ')}`);
    const counts: DumpCounts = { tables: {}, sequences: {} };
    let table: string | null = null;
    let insert = '';
    let batch: string[] = [];
    let batchBytes = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const r = await tx.query(insert, [JSON.stringify(batch)]);
      counts.tables[table!] += r.rowCount;
      batch = [];
      batchBytes = 0;
    };
    let n = 0;
    for await (const line of lines) {
      n++;
      if (line === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new DumpFormatError(`dump line ${n} is not JSON`);
      }
      if (typeof value === 'string') {
        if (table === null) throw new DumpFormatError(`dump line ${n} is a row before any table`);
        batch.push(value);
        batchBytes += value.length;
        if (batch.length >= BATCH_ROWS || batchBytes >= BATCH_BYTES) await flush();
      } else if (value && typeof value === 'object' && typeof (value as { table?: unknown }).table === 'string') {
        await flush();
        table = (value as { table: string }).table;
        if (!tables.includes(table)) throw new DumpFormatError(`the dump has a table ${table} that this schema does not have`);
        if (table in counts.tables) throw new DumpFormatError(`the dump has table ${table} twice`);
        counts.tables[table] = 0;
        const columns = (await listColumns(tx, table)).filter((c) => !c.generated).map((c) => quoteIdent(c.name));
        insert =
          `INSERT INTO ${quoteIdent(table)} (${columns.join(', ')}) ` +
          `SELECT ${columns.map((c) => `(${ROW_ALIAS}).${c}`).join(', ')} ` +
          `FROM (SELECT r::${quoteIdent(table)} AS ${ROW_ALIAS} FROM json_array_elements_text($1::text::json) AS r) AS rows`;
      } else if (value && typeof value === 'object' && typeof (value as { sequence?: unknown }).sequence === 'string') {
        await flush();
        table = null;
        const { sequence, value: last } = value as { sequence: string; value: unknown };
        if (typeof last !== 'number' || !Number.isSafeInteger(last)) throw new DumpFormatError(`dump line ${n}: sequence ${sequence} has no integer value`);
        const set = await tx.query(
          `SELECT setval(c.oid, $2, true) FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
            WHERE ns.nspname = current_schema() AND c.relname = $1 AND c.relkind = 'S'`,
          [sequence, last],
        );
        if (set.rows.length === 0) throw new DumpFormatError(`the dump has a sequence ${sequence} that this schema does not have`);
        counts.sequences[sequence] = last;
      } else {
        throw new DumpFormatError(`dump line ${n} is neither a table, a row nor a sequence`);
      }
    }
    await flush();
    return counts;
  });
}
