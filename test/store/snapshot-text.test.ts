import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MetricsError } from '../../src/errors.js';
import type { DashboardState } from '../../src/model/types.js';
import { snapshotPieces } from '../../src/store/snapshot-text.js';

function text(state: unknown): { text: string; pieces: number } {
  const pieces = [...snapshotPieces(state as DashboardState)];
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

  it('throws E_INVALID_STATE for a BigInt, at root or inside a list', () => {
    for (const state of [{ version: 1, big: 1n }, { events: [{ n: 2n }] }]) {
      let thrown: unknown;
      try {
        text(state);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(MetricsError);
      expect((thrown as MetricsError).code).toBe('E_INVALID_STATE');
    }
  });
});
