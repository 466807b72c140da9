import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MetricsError } from '../../src/errors.js';
import type { DashboardState } from '../../src/model/types.js';
import { snapshotPieces } from '../../src/store/snapshot-text.js';

/** Each piece copied as it comes: the next one reuses its memory. */
function text(state: unknown): { text: string; pieces: number } {
  const pieces: Buffer[] = [];
  for (const piece of snapshotPieces(state as DashboardState)) pieces.push(Buffer.from(piece));
  return { text: Buffer.concat(pieces).toString('utf8'), pieces: pieces.length };
}

const expected = (state: unknown) => `${JSON.stringify(state, null, 2)}\n`;

describe('snapshotPieces', () => {
  it('prints what JSON.stringify(state, null, 2) prints, for any JSON object with arrays at root', () => {
    const root = fc.dictionary(fc.string(), fc.oneof(fc.array(fc.jsonValue()), fc.jsonValue()));
    fc.assert(
      fc.property(root, (state) => {
        expect(text(state).text).toBe(expected(state));
      }),
      { numRuns: 300 },
    );
  });

  it('skips undefined root values and prints undefined list items as null, like JSON.stringify', () => {
    const state = { a: undefined, b: [undefined, () => 1, 1], c: [], d: {}, e: [[]], f: 'x' };
    expect(text(state).text).toBe(expected(state));
    expect(text({}).text).toBe('{}\n');
  });

  it('gives the same text when root lists span several pieces (> 1 MiB)', () => {
    const item = fc.record({
      id: fc.string(),
      note: fc.string({ minLength: 300, maxLength: 500, unit: 'binary' }),
    });
    const big = fc.record({
      version: fc.constant(1),
      events: fc.array(item, { minLength: 2500, maxLength: 3000 }),
      sessions: fc.array(fc.jsonValue(), { maxLength: 5 }),
      extra: fc.jsonValue(),
    });
    fc.assert(
      fc.property(big, (state) => {
        const printed = text(state);
        expect(printed.pieces).toBeGreaterThan(1);
        expect(printed.text).toBe(expected(state));
      }),
      { numRuns: 3 },
    );
  });

  it('prints lists of any length alike, whatever items fall on either side of where it prints them in groups', () => {
    // Small items are printed 64 to a call: lengths around multiples of that, with items JSON
    // cannot represent (printed as null) and characters of 2 to 4 UTF-8 bytes.
    const item = fc.oneof(
      fc.jsonValue(),
      fc.constantFrom(undefined, () => 1, Symbol('s'), 'é€😀', { toJSON: () => 'from toJSON' }),
    );
    const state = fc.record({
      version: fc.constant(1),
      events: fc.oneof(
        fc.array(item, { minLength: 60, maxLength: 70 }),
        fc.array(item, { minLength: 120, maxLength: 200 }),
      ),
      sessions: fc.array(item, { maxLength: 3 }),
    });
    fc.assert(
      fc.property(state, (value) => {
        expect(text(value).text).toBe(expected(value));
      }),
      { numRuns: 100 },
    );
  });

  it('writes every piece into one reused buffer, and texts larger than it whole', () => {
    const events = Array.from({ length: 12_000 }, (_, index) => ({ index, note: 'é'.repeat(200) }));
    // A root value of 5 MB of 2-byte characters: more than the buffer holds at first.
    const state = { version: 1, events, big: 'ü'.repeat(2_500_000), sessions: [] };
    const pieces = [...snapshotPieces(state as unknown as DashboardState)];
    expect(pieces.length).toBeGreaterThan(2);
    const before = new Set(pieces.slice(0, -1).map((piece) => piece.buffer));
    expect(before.size).toBe(1);
    expect(text(state).text).toBe(expected(state));
  });

  it('prints large items one at a time, after small ones too: a piece holds about one of them, not a group', () => {
    const large = 'x'.repeat(3 * 2 ** 20);
    const small = Array.from({ length: 200 }, (_, index) => ({ index }));
    for (const events of [
      [large, large, large, large, large],
      [...small, large, large, large, large, large],
    ]) {
      const state = { version: 1, events, sessions: [] };
      let largest = 0;
      let count = 0;
      for (const piece of snapshotPieces(state as unknown as DashboardState)) {
        largest = Math.max(largest, piece.length);
        count++;
      }
      expect(count).toBeGreaterThanOrEqual(5);
      expect(largest).toBeLessThan(large.length + 2 ** 20 + 100);
      expect(text(state).text).toBe(expected(state));
    }
  });

  it('prints deeply nested items as JSON.stringify does', () => {
    let deep: unknown = 'bottom';
    for (let level = 0; level < 200; level++) deep = level % 2 === 0 ? [deep] : { level: deep };
    const state = { version: 1, events: [1, deep, 'x', deep], sessions: [] };
    expect(text(state).text).toBe(expected(state));
  });

  it('prints the items of a group that fails as a whole one at a time', () => {
    // An item whose toJSON fails unless it is first in its group: its group fails, and alone
    // (the way a group too long for one string is printed) it prints.
    const picky = { toJSON: (key: string) => (key === '0' ? 'alone' : Symbol.prototype.toString.call(key)) };
    const events = [1, 2, picky, 4, 5, 6, 7];
    const printed = text({ version: 1, events }).text;
    expect(printed).toBe(expected({ version: 1, events: [1, 2, 'alone', 4, 5, 6, 7] }));
  });

  it('throws E_INVALID_STATE for a BigInt, at root or inside a list, and for a cycle in a list item', () => {
    const cycle: unknown[] = [];
    cycle.push(cycle);
    const cases = [
      { version: 1, big: 1n },
      { events: [{ n: 2n }] },
      // In a group of several items: the group fails, then the item alone.
      { events: [1, { n: 2n }, 3] },
      { events: [1, cycle, 2] },
    ];
    for (const state of cases) {
      let thrown: unknown;
      try {
        text(state);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(MetricsError);
      expect((thrown as MetricsError).code).toBe('E_INVALID_STATE');
      // What JSON.stringify says, not an overflow of the size estimate's walk.
      expect((thrown as MetricsError).message).toMatch(/BigInt|circular/);
    }
  });
});
