import { MetricsError } from '../errors.js';
import { History } from '../model/history.js';
import type { StoredState } from '../model/state-patch.js';
import type { DashboardState } from '../model/types.js';

/** Pieces are handed to the writer once they reach this size. */
const PIECE_BYTES = 1 << 20;

/**
 * List items printed by one JSON.stringify call. Printing each item alone and re-indenting its
 * text took twice as long (50,000 events: 155 ms against 70–79); 256 items at a time took 178 ms:
 * texts over 128 KiB go to V8's large-object space, counted as old generation, whose marking then
 * runs over the whole state (`.tmp` scratch timing in a process holding 50,000 events, 3 runs).
 */
const ITEMS_PER_CALL = 64;

/** What JSON.stringify(value, null, 2) prints for a value at `indent` (a root value). */
function stringify(value: unknown, indent: string): string {
  // Re-indenting a nested value's own two-space text gives exactly what JSON.stringify(state,
  // null, 2) prints for it at this depth.
  return (JSON.stringify(value, null, 2) ?? 'null').replaceAll('\n', `\n${indent}`);
}

/** How a wrapper `{ "k": [ … ] }` prints around items at the depth of a root list's items. */
const WRAPPER_START = '{\n  "k": ['.length;
const WRAPPER_END = '\n  ]\n}'.length;

/**
 * Items as JSON.stringify(state, null, 2) prints them in a root list, each after a newline and
 * four spaces, separated by commas (the first without): printed inside a wrapper that puts them at
 * that depth, then cut out of it. Like JSON.stringify, an item JSON cannot represent is `null`.
 */
function listItemsText(items: unknown[]): string {
  const wrapped = JSON.stringify({ k: items }, null, 2);
  return wrapped.slice(WRAPPER_START, wrapped.length - WRAPPER_END);
}

/**
 * Bytes of the text so far, in one buffer that grows as needed and is reused from one piece to the
 * next. Texts are written into it as they come: adding them to one string first made a rope that
 * took as long to flatten and encode as the JSON took to print.
 */
class PieceBuffer {
  private bytes = Buffer.allocUnsafeSlow(PIECE_BYTES * 2);
  used = 0;

  add(text: string): void {
    const room = this.bytes.length - this.used;
    // At most 3 bytes per UTF-16 unit: the exact length is counted only when it may not fit.
    if (text.length * 3 > room) {
      const needed = this.used + Buffer.byteLength(text, 'utf8');
      if (needed > this.bytes.length) {
        const grown = Buffer.allocUnsafeSlow(Math.max(needed, this.bytes.length * 2));
        this.bytes.copy(grown, 0, 0, this.used);
        this.bytes = grown;
      }
    }
    this.used += this.bytes.write(text, this.used, 'utf8');
  }

  /** The bytes added since the last take, valid until the next `add`. */
  take(): Buffer {
    const piece = this.bytes.subarray(0, this.used);
    this.used = 0;
    return piece;
  }
}

/**
 * The state file's text, byte for byte what `JSON.stringify(state, null, 2) + '\n'` gives (two
 * spaces, like the Python implementation), produced in pieces of about 1 MiB: with 50,000 events
 * the file is ~30 MB, and holding it whole (as a string, then as a buffer) would double the
 * process's memory while a checkpoint runs. Throws E_INVALID_STATE for values JSON cannot hold.
 *
 * Each piece is a view of one buffer that the next piece reuses: read (write) a piece before
 * asking for the next one, or copy it. A new buffer per piece made a 50,000-event checkpoint
 * spend more time in the page faults of fresh memory than in printing the JSON.
 */
export function* snapshotPieces(state: DashboardState | StoredState): Generator<Buffer> {
  const out = new PieceBuffer();
  out.add('{');
  let first = true;
  try {
    for (const [key, value] of Object.entries(state)) {
      if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
      out.add(`${first ? '' : ','}\n  ${JSON.stringify(key)}: `);
      first = false;
      const list =
        value instanceof History || Array.isArray(value) ? (value as Iterable<unknown>) : undefined;
      if (list === undefined || (value as { length: number }).length === 0) {
        out.add(stringify(value, '  '));
        continue;
      }
      out.add('[');
      let separator = '';
      let batch: unknown[] = [];
      const printBatch = () => {
        out.add(separator);
        out.add(listItemsText(batch));
        separator = ',';
        batch = [];
      };
      for (const item of list) {
        batch.push(item);
        if (batch.length < ITEMS_PER_CALL) continue;
        printBatch();
        if (out.used >= PIECE_BYTES) yield out.take();
      }
      if (batch.length > 0) printBatch();
      out.add('\n  ]');
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
  out.add(first ? '}\n' : '\n}\n');
  yield out.take();
}
