import { MetricsError } from '../errors.js';
import { History } from '../model/history.js';
import type { StoredState } from '../model/state-patch.js';
import type { DashboardState } from '../model/types.js';

/**
 * A piece is handed to the writer once it reaches this size (it is larger by the last group of
 * list items printed, at most about `CALL_TEXT_UNITS` or one large item, or by a large root value).
 */
const PIECE_BYTES = 1 << 20;

/**
 * List items printed by one JSON.stringify call, at most. Printing each item alone and
 * re-indenting its text took twice as long (50,000 events: 155 ms against 70–79; alone inside a
 * wrapper, without re-indenting, 110–116); 256 items at a time took 178 ms: texts over 128 KiB go
 * to V8's large-object space, counted as old generation, whose marking then runs over the whole
 * state (`.tmp` scratch timing in a process holding 50,000 events, 3 runs).
 */
const MAX_ITEMS_PER_CALL = 64;
/**
 * How long one call's text may grow (UTF-16 units) by the items' `printedAtLeast`: below the
 * large-object size for ordinary items. An item above it alone is printed alone, so that memory
 * stays bounded by the largest item, not 64 of them.
 */
const CALL_TEXT_UNITS = 64 * 1024;
/**
 * Deeper than this, `printedAtLeast` stops and calls the value large (printed alone). The size
 * limit alone lets a cycle run ~11,000 levels deep: under vitest's coverage that overflowed the
 * stack, and the error said so instead of naming the cycle.
 */
const ESTIMATE_DEPTH = 64;

/**
 * At least how many UTF-16 units JSON.stringify prints for `value` (its strings' lengths, and a
 * few for every other value), counted until the count passes `limit`. Not exact, and need not
 * be: it only decides which items are printed together.
 */
function printedAtLeast(value: unknown, limit: number, depth = 0): number {
  if (typeof value === 'string') return value.length + 2;
  if (typeof value !== 'object' || value === null) return 4;
  if (depth > ESTIMATE_DEPTH) return limit + 1;
  let units = 2;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    units += 4 + printedAtLeast(child, limit - units, depth + 1);
    if (units > limit) break;
  }
  return units;
}

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
 * The items of a root list into `out`, in groups of at most `MAX_ITEMS_PER_CALL` items and
 * `CALL_TEXT_UNITS` by their `printedAtLeast`, yielding a piece whenever `out` holds `PIECE_BYTES`.
 * A group that fails as a whole is printed item by item: one too long for a string (items far
 * larger than their estimate) is written all the same, and a value JSON cannot hold is reported
 * for the first item that holds one, as when each item was printed alone.
 */
function* listPieces(list: Iterable<unknown>, out: PieceBuffer): Generator<Buffer> {
  let separator = '';
  const print = (text: string) => {
    out.add(separator);
    out.add(text);
    separator = ',';
  };
  let group: unknown[] = [];
  let groupUnits = 0;
  function* printGroup(): Generator<Buffer> {
    try {
      print(listItemsText(group));
    } catch (error) {
      if (group.length === 1) throw error;
      for (const item of group) {
        print(listItemsText([item]));
        if (out.used >= PIECE_BYTES) yield out.take();
      }
    }
    group = [];
    groupUnits = 0;
    if (out.used >= PIECE_BYTES) yield out.take();
  }
  for (const item of list) {
    const units = printedAtLeast(item, CALL_TEXT_UNITS);
    const full = groupUnits + units > CALL_TEXT_UNITS || group.length >= MAX_ITEMS_PER_CALL;
    if (group.length > 0 && full) yield* printGroup();
    group.push(item);
    groupUnits += units;
  }
  if (group.length > 0) yield* printGroup();
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
 *
 * For the plain data the store writes (its states went through a JSON round trip) the text is
 * exact. For objects of another kind it may not be: a root list's own `toJSON` is not called, a
 * list is read through its iterator, and an item's `toJSON` gets its index in its group (as
 * `key`) and runs before the items after it in the group were read.
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
      yield* listPieces(list, out);
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
