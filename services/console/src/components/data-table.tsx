/**
 * The admin pages' one table: a header cell per column, the first column as each row's header (so a screen reader
 * names the row as it reads a cell), a scroll box of its own so a wide table never widens a phone's page, and a
 * sentence instead of an empty table.
 */
import type { ComponentChildren } from 'preact';

/** One column: its header and what a row shows in it. */
export interface Column<T> {
  header: string;
  cell(row: T): ComponentChildren;
  /** A class for the column's cells (`row-actions` spaces several buttons). */
  class?: string;
}

/** What a table shows. */
export interface DataTableProps<T> {
  /** The columns, in order; the first is the row header. */
  columns: ReadonlyArray<Column<T>>;
  rows: readonly T[];
  /** A key that tells rows apart across reloads (an id, a name). */
  rowKey(row: T, index: number): string | number;
  /** Said in place of the table when there are no rows; an empty table with its headers when not given. */
  empty?: ComponentChildren;
  /** The table's accessible name when its section heading is not enough (several tables in one section). */
  label?: string;
}

/** A table of rows, one column a field. */
export function DataTable<T>({ columns, rows, rowKey, empty, label }: DataTableProps<T>) {
  if (rows.length === 0 && empty !== undefined) return <p>{empty}</p>;
  const [first, ...rest] = columns;
  return (
    <div class="table-wrap">
      <table aria-label={label}>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.header} scope="col">
                {c.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={rowKey(row, i)}>
              <th scope="row" class={first.class}>
                {first.cell(row)}
              </th>
              {rest.map((c) => (
                <td key={c.header} class={c.class}>
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
