import { MetricsError } from '../errors.js';
import { History } from '../model/history.js';
import type { StoredState } from '../model/state-patch.js';
import type { DashboardState } from '../model/types.js';

/** Pieces are handed to the writer once they reach this size. */
const PIECE_BYTES = 1 << 20;

function stringify(value: unknown, indent: string): string {
  // Re-indenting a nested value's own two-space text gives exactly what JSON.stringify(state,
  // null, 2) prints for it at this depth.
  // A list item JSON cannot represent (a function, …) is printed as null, as JSON.stringify does.
  return (JSON.stringify(value, null, 2) ?? 'null').replaceAll('\n', `\n${indent}`);
}

/**
 * The state file's text, byte for byte what `JSON.stringify(state, null, 2) + '\n'` gives (two
 * spaces, like the Python implementation), produced in pieces of about 1 MiB: with 50,000 events
 * the file is ~30 MB, and holding it whole (as a string, then as a buffer) would double the
 * process's memory while a checkpoint runs. Throws E_INVALID_STATE for values JSON cannot hold.
 */
export function* snapshotPieces(state: DashboardState | StoredState): Generator<Buffer> {
  let pending = '{';
  let first = true;
  try {
    for (const [key, value] of Object.entries(state)) {
      if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
      pending += `${first ? '' : ','}\n  ${JSON.stringify(key)}: `;
      first = false;
      const list =
        value instanceof History || Array.isArray(value) ? (value as Iterable<unknown>) : undefined;
      if (list === undefined || (value as { length: number }).length === 0) {
        pending += stringify(value, '  ');
        continue;
      }
      pending += '[';
      let separator = '';
      for (const item of list) {
        pending += `${separator}\n    ${stringify(item, '    ')}`;
        separator = ',';
        if (pending.length >= PIECE_BYTES) {
          yield Buffer.from(pending, 'utf8');
          pending = '';
        }
      }
      pending += '\n  ]';
    }
  } catch (error) {
    // Extra keys may hold values JSON cannot represent (BigInt, cycles).
    throw new MetricsError(
      'E_INVALID_STATE',
      `state cannot be written as JSON: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  pending += first ? '}\n' : '\n}\n';
  yield Buffer.from(pending, 'utf8');
}
