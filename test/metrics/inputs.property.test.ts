import fc from 'fast-check';
import type * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors.js';
import {
  endSessionSchema,
  eventInputSchema,
  parseInput,
  parseWithValibot,
  sessionInputSchema,
  trackContextSchema,
} from '../../src/metrics/inputs.js';
import { compile } from '../../src/model/schema-predicate.js';

type Schema = v.GenericSchema;

const validEvent = {
  agentName: 'coding',
  status: 'success',
  sessionId: 's1',
  ticketKey: 'AI-1',
  model: 'claude-sonnet-4-5',
  inputTokens: 10,
  outputTokens: 2,
  startedAt: new Date(Date.UTC(2026, 0, 1)),
  endedAt: '2026-01-01T00:00:42Z',
  durationSeconds: 42,
  costUsd: 0.5,
  artifacts: ['commit:abc', 'lines:+3/-1'],
  errorMessage: '',
};
const cases: Array<[string, Schema, Record<string, unknown>]> = [
  ['event', eventInputSchema as Schema, validEvent],
  ['session', sessionInputSchema as Schema, { type: 'initializer', sessionId: 'x', startedAt: new Date(0) }],
  [
    'end',
    endSessionSchema as Schema,
    { sessionId: 'x', status: 'complete', endedAt: '2026-01-01T00:00:00+02:00' },
  ],
  ['track', trackContextSchema as Schema, { agentName: 'a', artifacts: [] }],
];

/** Values near the edges of what the input schemas accept. */
const edgeValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'x',
    'success',
    'complete',
    'initializer',
    '2026-01-31T12:00:00Z',
    '2026-02-30T12:00:00Z',
    '2026-01-31 12:00:00',
    '+010000-01-01T00:00:00Z',
    'lines:+1/-1',
    'lines:1',
    new Date(0),
    new Date(Number.NaN),
    new Date(8.64e15),
    0,
    -0,
    -1,
    0.5,
    2 ** 53,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    null,
    undefined,
    [],
    ['a'],
    ['lines:x'],
    [1],
    {},
  ),
  fc.string(),
  fc.double(),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.anything({ withDate: true, withSparseArray: true, withNullPrototype: true, maxDepth: 2 }),
);

/** A valid input with a few keys replaced, removed, added, inherited or made non-enumerable. */
function variantOf(valid: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = [...Object.keys(valid), 'unknown', '__proto__', 'toString'];
  const edit = fc.tuple(fc.constantFrom(...keys), edgeValue, fc.nat(4));
  return fc.tuple(fc.array(edit, { maxLength: 3 }), fc.boolean()).map(([edits, bare]) => {
    let input: Record<string, unknown> = bare ? Object.assign(Object.create(null), valid) : { ...valid };
    for (const [key, value, how] of edits) {
      const define = (enumerable: boolean) =>
        Object.defineProperty(input, key, { value, enumerable, configurable: true, writable: true });
      if (how === 0) delete input[key];
      else if (how === 1) define(true);
      else if (how === 2) define(false);
      else if (how === 3) input = Object.setPrototypeOf({ ...input }, { [key]: value });
      // how === 4: left as it is
    }
    return input;
  });
}

type Answer = { output: unknown } | { error: string };

/** What `parse` gives: its output, or the InvalidInputError's message (every field and path). */
function answerOf(parse: () => unknown): Answer {
  try {
    return { output: parse() };
  } catch (error) {
    if (error instanceof InvalidInputError) return { error: error.message };
    throw error;
  }
}
/** valibot alone: what parseInput answered before the compiled predicates. */
const byValibot = (schema: Schema, input: unknown) => answerOf(() => parseWithValibot(schema, input));
const byParseInput = (schema: Schema, input: unknown) => answerOf(() => parseInput(schema, input));

describe('parseInput without valibot’s run (compiled predicates on a copy)', () => {
  it('compiles the input schemas, and takes the fast path for a valid input (else every input takes valibot’s run)', () => {
    for (const [, schema] of cases) expect(compile(schema)).toBeTypeOf('function');
    // What tells the two paths apart: valibot's output has the schema's key order, the copy the input's.
    const parsed = parseInput(eventInputSchema, { status: 'success', agentName: 'a' });
    expect(Object.keys(parsed)).toEqual(['status', 'agentName']);
    expect(Object.keys(parseWithValibot(eventInputSchema, { status: 'success', agentName: 'a' }))).toEqual([
      'agentName',
      'status',
    ]);
  });

  it('accepts and gives what valibot gives, and rejects what it rejects', () => {
    for (const [name, schema, valid] of cases) {
      expect(byParseInput(schema, valid), name).toEqual(byValibot(schema, valid));
      fc.assert(
        fc.property(variantOf(valid), (input) => {
          expect(byParseInput(schema, input)).toStrictEqual(byValibot(schema, input));
        }),
        { numRuns: 1500 },
      );
    }
  });

  it('gives a copy: lists are new, and a getter is read once', () => {
    let reads = 0;
    const input = { ...validEvent };
    Object.defineProperty(input, 'agentName', { enumerable: true, get: () => (++reads === 1 ? 'a' : '') });
    const parsed = parseInput(eventInputSchema, input);
    expect(parsed.agentName).toBe('a');
    expect(reads).toBe(1);
    expect(parsed).not.toBe(input);
    expect(parsed.artifacts).toEqual(validEvent.artifacts);
    expect(parsed.artifacts).not.toBe(validEvent.artifacts);
  });

  it('answers odd inputs as valibot does: list iterators, changing getters, Proxies, symbols, a polluted prototype', () => {
    // A spread reads a list through its iterator; valibot reads the items by index.
    const hiding = () =>
      Object.defineProperty(['lines:bogus'], Symbol.iterator, {
        *value() {
          yield 'commit:ok';
        },
      });
    const base = { agentName: 'a', status: 'success' };
    const odd: Array<[string, () => unknown]> = [
      ['a list whose iterator hides its items', () => ({ ...base, artifacts: hiding() })],
      [
        'a getter that answers a number first',
        () => {
          let reads = 0;
          return Object.defineProperty({ ...base }, 'ticketKey', {
            enumerable: true,
            get: () => (reads++ === 0 ? 5 : 't'),
          });
        },
      ],
      ['a Proxy that hides every key from `in`', () => new Proxy({ ...base }, { has: () => false })],
      [
        'a Proxy that hides one key',
        () => new Proxy({ ...base, sessionId: 's' }, { has: (_, key) => key !== 'sessionId' }),
      ],
      [
        'a getter that throws, after an unknown key',
        () =>
          Object.defineProperty({ ...base, x: 1 }, 'y', {
            enumerable: true,
            get: () => {
              throw new Error('boom');
            },
          }),
      ],
      ['a symbol key', () => ({ ...base, [Symbol('x')]: 1 })],
    ];
    for (const [name, make] of odd) {
      expect(byParseInput(eventInputSchema as Schema, make()), name).toStrictEqual(
        byValibot(eventInputSchema as Schema, make()),
      );
    }
    const polluted: Array<[PropertyDescriptor, () => unknown]> = [
      [{ set() {}, get: () => 'inherited' }, () => ({ ...base, sessionId: 'own' })],
      // valibot reads no inherited key of a null-prototype input; a copy made by `{}` would.
      [{ value: 5, writable: true }, () => Object.assign(Object.create(null), base)],
    ];
    for (const [descriptor, make] of polluted) {
      Object.defineProperty(Object.prototype, 'sessionId', { ...descriptor, configurable: true });
      try {
        expect(byParseInput(eventInputSchema as Schema, make())).toStrictEqual(
          byValibot(eventInputSchema as Schema, make()),
        );
      } finally {
        delete (Object.prototype as { sessionId?: unknown }).sessionId;
      }
    }
  });

  it('names the bad field as before when the copy is invalid', () => {
    expect(() => parseInput(eventInputSchema, { ...validEvent, inputTokens: -1 })).toThrow(
      /inputTokens: expected a non-negative integer/,
    );
    const hidden = Object.defineProperty({ ...validEvent }, 'sessionId', { value: 42, enumerable: false });
    expect(() => parseInput(eventInputSchema, hidden)).toThrow(/sessionId: expected a string/);
  });
});
