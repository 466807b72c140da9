import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { History } from '../../src/model/history.js';

type Step = { kind: 'append'; count: number } | { kind: 'drop'; count: number } | { kind: 'fork' };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), count: fc.nat(5) }),
  fc.record({ kind: fc.constant('drop' as const), count: fc.nat(200) }),
  fc.record({ kind: fc.constant('fork' as const) }),
);

describe('History', () => {
  it('behaves as an immutable array: every list made keeps its records, whatever is made from it later', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), fc.nat(300), (steps, initial) => {
        let serial = 0;
        const fresh = (count: number) => Array.from({ length: count }, () => ({ id: serial++ }));
        const start = fresh(initial);
        // Each list made, with the records it must hold forever.
        const made: Array<{ list: History<{ id: number }>; expected: Array<{ id: number }> }> = [
          { list: History.adopt(start.slice()), expected: start },
        ];
        let current = made[0] as (typeof made)[number];
        for (const item of steps) {
          if (item.kind === 'fork') {
            // Continue from an older list: appending to it must not overwrite its successors.
            current = made[Math.floor(made.length / 2)] as (typeof made)[number];
            continue;
          }
          const records = item.kind === 'append' ? fresh(item.count) : [];
          const list =
            item.kind === 'append' ? current.list.append(records) : current.list.dropFront(item.count);
          const expected =
            item.kind === 'append' ? current.expected.concat(records) : current.expected.slice(item.count);
          current = { list, expected };
          made.push(current);
        }
        for (const { list, expected } of made) {
          expect(list.toArray()).toEqual(expected);
          expect([...list]).toEqual(expected);
          expect(list).toHaveLength(expected.length);
          expect(list.at(0)).toBe(expected[0]);
          expect(list.at(expected.length)).toBeUndefined();
          if (expected.length > 0)
            expect(list.indexOf(expected.at(-1) as { id: number })).toBe(expected.length - 1);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('keepLast keeps the newest records; JSON writes the records as an array', () => {
    const list = History.adopt([1, 2, 3, 4, 5]).append([6]).keepLast(3);
    expect(list.toArray()).toEqual([4, 5, 6]);
    expect(JSON.stringify({ list })).toBe('{"list":[4,5,6]}');
    expect(list.indexOf(1)).toBe(-1);
    expect(list.keepLast(10)).toBe(list);
  });

  it('dropped records are released once they outnumber a quarter of the kept ones', () => {
    let list = History.adopt(Array.from({ length: 1000 }, (_, index) => index));
    for (let index = 0; index < 600; index++) list = list.append([1000 + index]).dropFront(1);
    // The buffer behind the list is internal; its size shows in how much memory the list holds.
    const buffer = (list as unknown as { buffer: number[] }).buffer;
    expect(buffer.length).toBeLessThanOrEqual(1000 * 1.25 + 64 + 1);
    expect(list.toArray()).toEqual(Array.from({ length: 1000 }, (_, index) => 600 + index));
  });
});
