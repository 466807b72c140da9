import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StateFileStream } from '../../src/store/state-file-stream.js';

/** What the stream makes of `bytes` fed in pieces of the given sizes (cycled). */
function streamed(bytes: Buffer, sizes: readonly number[] = [bytes.length || 1]): unknown {
  const stream = new StateFileStream();
  for (let position = 0, turn = 0; position < bytes.length; turn++) {
    const size = Math.max(1, sizes[turn % sizes.length] as number);
    if (!stream.push(bytes.subarray(position, position + size))) return undefined;
    position += size;
  }
  return stream.end();
}

/** JSON.parse's value, or undefined when it throws. */
function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Equal values with the same own keys in the same order (`__proto__` included), all the way down. */
function expectSame(actual: unknown, expected: unknown): void {
  expect(actual).toStrictEqual(expected);
  expect(JSON.stringify(actual)).toBe(JSON.stringify(expected));
}

/** Any JSON text of an object, in one of the layouts JSON.stringify and Python's json module give. */
const objectText = fc
  .tuple(
    fc.dictionary(fc.string(), fc.oneof(fc.array(fc.jsonValue()), fc.jsonValue())),
    fc.constantFrom(undefined, 2, '\t', ' \r\n'),
  )
  .map(([value, indent]) => JSON.stringify(value, null, indent));

const pieceSizes = fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 });

describe('StateFileStream', () => {
  it('gives what JSON.parse gives for any JSON object, however the bytes are split', () => {
    fc.assert(
      fc.property(objectText, pieceSizes, (text, sizes) => {
        expectSame(streamed(Buffer.from(text), sizes), JSON.parse(text));
      }),
      { numRuns: 400 },
    );
  });

  it('never gives a value for a text JSON.parse rejects, and else gives its value (byte edits of valid texts)', () => {
    const edited = fc
      .tuple(
        objectText,
        fc.nat(),
        fc.constantFrom('', ',', ']', '}', '"', '\\', ':', '[', '{', 'x', ' 1', '\uFEFF', 'é', '\u2028'),
      )
      .map(([text, at, insert]) => {
        const index = at % (text.length + 1);
        // Replace one character (or delete it, with '') to make near-valid texts.
        return text.slice(0, index) + insert + text.slice(index + 1);
      });
    fc.assert(
      fc.property(edited, pieceSizes, (text, sizes) => {
        const result = streamed(Buffer.from(text), sizes);
        const expected = parsed(text);
        if (result !== undefined) expectSame(result, expected);
        // Where it gives up, the caller parses the whole file: only non-objects may be refused.
        if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
          expectSame(result, expected);
        }
      }),
      { numRuns: 600 },
    );
  });

  it('gives up on misplaced glue between the parts', () => {
    const texts = [
      '{"a":[,],"b":1}',
      '{"a":[,,"b":1}',
      '{"a":[1,,2]}',
      '{"a":[1 2]}',
      '{"a":[]]}',
      '{"a":1,,"b":2}',
      '{,"a":1}',
      '{"a"::1}',
      '{"a":1 "b":2}',
      '{"a":1,}',
      '{"a":{}}}',
      '{"a":1}{}',
      '{1:2}',
    ];
    for (const text of texts) {
      expect(parsed(text)).toBeUndefined();
      for (const size of [1, 3, 100]) expect(streamed(Buffer.from(text), [size])).toBeUndefined();
    }
  });

  it('parses long root lists spread over many pieces, and gives up on a bad item far into one', () => {
    const event = (index: number) => ({ event_id: `e${index}`, note: 'é'.repeat(200), tokens: index });
    const state = {
      version: 1,
      events: Array.from({ length: 3000 }, (_, index) => event(index)),
      agents: {},
    };
    const text = JSON.stringify(state, null, 2);
    expect(Buffer.byteLength(text)).toBeGreaterThan(1 << 20);
    expectSame(streamed(Buffer.from(text), [1 << 20]), state);
    expectSame(streamed(Buffer.from(text), [4093]), state);

    const broken = text.replace('"e2500"', '"e2500" 1');
    expect(parsed(broken)).toBeUndefined();
    expect(streamed(Buffer.from(broken), [1 << 20])).toBeUndefined();
  });

  it('keeps keys as JSON.parse does: __proto__ as an own key, a repeated key last value first place', () => {
    const text = '{"a":1,"__proto__":{"polluted":true},"b":[],"a":2}';
    const result = streamed(Buffer.from(text), [1]) as Record<string, unknown>;
    expectSame(result, JSON.parse(text));
    expect(Object.keys(result)).toEqual(['a', '__proto__', 'b']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('gives up on what is not a JSON object: lists, a byte-order mark, nothing, invalid UTF-8', () => {
    expect(streamed(Buffer.from('[1]'))).toBeUndefined();
    expect(streamed(Buffer.from('\uFEFF{"a":1}'))).toBeUndefined();
    expect(streamed(Buffer.from(''))).toBeUndefined();
    expect(streamed(Buffer.from('  '))).toBeUndefined();
    expect(
      streamed(Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3]), Buffer.from('"}')])),
    ).toBeUndefined();
    expect(streamed(Buffer.from('{"a":[1,2'))).toBeUndefined();
    // A byte-order mark before a value or an item (the whole file's JSON.parse rejects it too).
    for (const text of [
      '{"a":\uFEFF1}',
      '{"a":[\uFEFF1,2]}',
      '{"a":\uFEFF[]}',
      '{"a":\uFEFF"x"}',
      '{\uFEFF"a":1}',
    ]) {
      expect(parsed(text)).toBeUndefined();
      expect(streamed(Buffer.from(text), [1])).toBeUndefined();
      expect(streamed(Buffer.from(text))).toBeUndefined();
    }
  });

  it('reads multi-byte characters split between pieces', () => {
    const text = '{"名前":["ü","🙂",{"k":"日本"}],"s":"\\"q\\\\"}';
    for (const size of [1, 2, 3, 5]) expectSame(streamed(Buffer.from(text), [size]), JSON.parse(text));
  });
});
