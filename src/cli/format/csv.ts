import { stringify } from 'csv-stringify/sync';
import { COLUMNS, type RecordKind } from './records.js';

/** Lists (artifacts, agents, tickets) in one cell, joined by this: `commit:abc;pr:#42`. */
export const LIST_SEPARATOR = ';';

/**
 * RFC 4180 CSV with a header row, CRLF line ends, and quoting where a cell needs it (comma,
 * quote, line break), by csv-stringify rather than by hand.
 */
export function toCsv(records: readonly Record<string, unknown>[], what: RecordKind): string {
  const columns = COLUMNS[what];
  const rows = records.map((record) =>
    columns.map((column) => {
      const value = record[column];
      return Array.isArray(value) ? value.join(LIST_SEPARATOR) : value;
    }),
  );
  // csv-stringify quotes a cell that holds the record delimiter (CRLF here), not a lone line feed
  // or carriage return, which a reader would still take for the end of a record.
  return stringify(rows, {
    header: true,
    columns: [...columns],
    record_delimiter: 'windows',
    quoted_match: /[\r\n]/,
  });
}
