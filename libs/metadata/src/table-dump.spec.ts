import { Database } from './database';
import { migrate } from './migrate';
import { createPgliteDatabase } from './pglite-adapter';
import { DumpFormatError, dumpTables, inSnapshot, loadTables } from './table-dump';

/** Every row of every table in its text form, sorted: equal for two databases with the same content. */
async function contents(db: Database): Promise<Record<string, string[]>> {
  const tables = (await db.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`)).rows.map((r) => r.t);
  const out: Record<string, string[]> = {};
  for (const t of tables) out[t] = (await db.query<{ r: string }>(`SELECT x::text AS r FROM "${t}" AS x`)).rows.map((r) => r.r).sort();
  return out;
}

async function dumpOf(db: Database, options: Parameters<typeof dumpTables>[2] = {}): Promise<{ lines: string[]; counts: Awaited<ReturnType<typeof dumpTables>> }> {
  const lines: string[] = [];
  const counts = await inSnapshot(db, (tx) => dumpTables(tx, async (line) => void lines.push(line), options));
  return { lines, counts };
}

async function* from(lines: string[]): AsyncGenerator<string> {
  yield* lines;
}

/** A table with the awkward types: bytea, jsonb, arrays, quotes and line breaks in text, nulls, a generated column. */
const ODD_TABLE = `CREATE TABLE odd (
  id bigserial PRIMARY KEY,
  bytes bytea,
  doc jsonb,
  words text[],
  note text,
  at timestamptz NOT NULL DEFAULT now(),
  note_length integer GENERATED ALWAYS AS (length(note)) STORED
)`;

describe('table dump', () => {
  let source: Database;
  let target: Database;

  beforeAll(async () => {
    [source, target] = await Promise.all([createPgliteDatabase(), createPgliteDatabase()]);
    for (const db of [source, target]) {
      await migrate(db);
      await db.exec(ODD_TABLE);
    }
    await source.query(`INSERT INTO repositories (name) VALUES ('team/app'), ('team/"quoted", (paren)')`);
    await source.query(`INSERT INTO blobs (digest, size) VALUES ('sha256:${'a'.repeat(64)}', 3)`);
    const rows: Array<[Buffer | null, unknown, string[] | null, string | null]> = [
      [Buffer.from([0, 1, 2, 92, 34, 255]), { a: [1, 'two', null], s: 'line\nbreak "q" \\ back' }, ['x', 'y, z', '"q"', 'NULL'], 'a "note",\nwith (parens) and \\ backslash'],
      [null, null, null, null],
      [Buffer.alloc(0), 'string', [], ''],
    ];
    for (let i = 0; i < 7; i++) rows.push([Buffer.from(`row ${i}`), { i }, [String(i)], `n${i}`]);
    // Enough rows to fill several heap blocks: the dump reads them a block range at a time.
    await source.query(
      `INSERT INTO odd (bytes, doc, words, note) SELECT decode(md5(g::text), 'hex'), jsonb_build_object('g', g), ARRAY[g::text, 'x'], repeat('p', 150) || g FROM generate_series(1, 400) AS g`,
    );
    for (const [bytes, doc, words, note] of rows) {
      await source.query(`INSERT INTO odd (bytes, doc, words, note) VALUES ($1, $2::text::jsonb, $3::text::text[], $4)`, [
        bytes,
        doc === null ? null : JSON.stringify(doc),
        words === null ? null : `{${words.map((w) => `"${w.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`,
        note,
      ]);
    }
  });
  afterAll(async () => {
    await source?.close();
    await target?.close();
  });

  it('loads back every row exactly, paging through tables, and sets the sequences', async () => {
    const blocks = (await source.query<{ n: number }>(`SELECT pg_relation_size('odd') / current_setting('block_size')::int AS n`)).rows[0].n;
    expect(Number(blocks)).toBeGreaterThan(5);
    const { lines, counts } = await dumpOf(source, { pageBlocks: 2 });
    expect(counts.tables.odd).toBe(410);
    expect(counts.tables.repositories).toBe(2);
    expect(counts.sequences).toEqual({ odd_id_seq: 410, repositories_id_seq: 2 });
    // Rows the target had before are gone: a load is the dump's content, not a merge.
    await target.query(`INSERT INTO repositories (name) VALUES ('left/over')`);
    const loaded = await loadTables(target, from(lines));
    expect(loaded).toEqual(counts);
    expect(await contents(target)).toEqual(await contents(source));
    // The generated column was computed again, and new ids continue after the dumped ones.
    expect((await target.query<{ n: number }>(`SELECT note_length AS n FROM odd WHERE note = 'n3'`)).rows[0].n).toBe(2);
    expect((await target.query<{ id: number }>(`INSERT INTO repositories (name) VALUES ('new') RETURNING id`)).rows[0].id).toBe(3);
  });

  it('leaves out the rows of excluded tables', async () => {
    const { lines, counts } = await dumpOf(source, { exclude: ['odd'] });
    expect(counts.tables.odd).toBe(0);
    await loadTables(target, from(lines));
    expect((await target.query(`SELECT 1 FROM odd`)).rows).toHaveLength(0);
    expect((await target.query(`SELECT 1 FROM repositories`)).rows).toHaveLength(2);
  });

  it('refuses a dump it does not understand and changes nothing', async () => {
    const { lines } = await dumpOf(source);
    await loadTables(target, from(lines));
    const before = await contents(target);
    await expect(loadTables(target, from([...lines.slice(0, 5), '{"table":"no_such_table"}']))).rejects.toThrow(DumpFormatError);
    await expect(loadTables(target, from(['"(1)"']))).rejects.toThrow(/row before any table/);
    await expect(loadTables(target, from(['{"table":"odd"}', 'not json']))).rejects.toThrow(/not JSON/);
    await expect(loadTables(target, from(['{"table":"repositories"}', JSON.stringify('(x,not-a-row')]))).rejects.toThrow();
    expect(await contents(target)).toEqual(before);
  });
});
