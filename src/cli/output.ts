/** Printing for the CLI: JSON for scripts, aligned columns and plain sentences for people. */

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function print(text = ''): void {
  process.stdout.write(`${text}\n`);
}

type Cell = string | number | boolean | null | undefined;

/** Columns padded to their widest cell; `empty` is printed instead when there are no rows. */
export function printTable(headers: string[], rows: Cell[][], empty: string): void {
  if (rows.length === 0) return print(empty);
  const text = [headers, ...rows.map((row) => row.map((cell) => (cell == null ? '-' : String(cell))))];
  const widths = headers.map((_, column) => Math.max(...text.map((row) => row[column]!.length)));
  for (const row of text) {
    print(row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '));
  }
}

/** "2026-11-26 07:05:15Z" from an ISO string or epoch milliseconds. */
export function formatTime(time: string | number | null): string | null {
  if (time == null) return null;
  return new Date(time)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

export { isoTime } from '../envelope/time.js';
