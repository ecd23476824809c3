/**
 * @jest-environment jsdom
 */
import { render, screen, within } from '@testing-library/preact';
import { DataTable } from './data-table';

const ROWS = [
  { name: 'alice', role: 'admin' },
  { name: 'bob', role: 'user' },
];
const COLUMNS = [
  { header: 'Name', cell: (r: (typeof ROWS)[number]) => r.name },
  { header: 'Role', cell: (r: (typeof ROWS)[number]) => r.role },
];

describe('the admin table', () => {
  it('heads each column and makes the first column the header of its row, so a cell is read with its row', () => {
    render(<DataTable rows={ROWS} columns={COLUMNS} rowKey={(r) => r.name} label="People" />);
    const table = screen.getByRole('table', { name: 'People' });
    expect(within(table).getAllByRole('columnheader').map((h) => h.textContent)).toEqual(['Name', 'Role']);
    expect(within(table).getAllByRole('rowheader').map((h) => h.textContent)).toEqual(['alice', 'bob']);
    expect(within(table).getAllByRole('cell').map((c) => c.textContent)).toEqual(['admin', 'user']);
    expect(table.parentElement?.className).toBe('table-wrap');
  });

  it('says its empty sentence instead of an empty table, and shows the headers when it has none', () => {
    const { unmount } = render(<DataTable rows={[]} columns={COLUMNS} rowKey={(r) => r.name} empty="No people yet." />);
    expect(screen.getByText('No people yet.')).toBeTruthy();
    expect(screen.queryByRole('table')).toBeNull();
    unmount();
    render(<DataTable rows={[]} columns={COLUMNS} rowKey={(r) => r.name} />);
    expect(screen.getAllByRole('columnheader')).toHaveLength(2);
  });
});
