import fc from 'fast-check';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import {
  agentEventSchema,
  agentProfileSchema,
  dashboardStateEntries,
  dashboardStateSchema,
  sessionSummaryEntries,
  sessionSummarySchema,
} from '../../src/model/schema.js';
import { compile, isValid } from '../../src/model/schema-predicate.js';
import { makeEvent, makeProfile, makeSession } from '../helpers/builders.js';

type Schema = v.GenericSchema;

/** The entries of an `objectOnly(v.looseObject(entries))` schema. */
const entriesOf = (schema: Schema) =>
  ((schema as unknown as { pipe: Array<{ entries?: Record<string, Schema> }> }).pipe[1]?.entries ??
    {}) as Record<string, Schema>;

const profileEntries = entriesOf(agentProfileSchema);
const eventEntries = entriesOf(agentEventSchema);

/** Values near the edges of what the file format's schemas accept. */
const edgeValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    '',
    'x',
    '2026-01-31T12:00:00Z',
    '2026-01-31T12:00:00.123456+02:00',
    '2026-01-31 12:00:00',
    0,
    -0,
    1,
    -1,
    0.5,
    1.5,
    2 ** 53,
    2 ** 53 - 1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    null,
    undefined,
    true,
    [],
    ['a'],
    ['a', 1],
    {},
    'success',
    'error',
    'complete',
    'initializer',
  ),
  fc.string(),
  fc.double(),
  fc.integer(),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.anything(),
);

/** A valid record with one key replaced by an edge value or removed (or left as it is). */
function variantOf(valid: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(valid);
  return fc
    .tuple(fc.constantFrom(...keys), edgeValue, fc.integer({ min: 0, max: 4 }))
    .map(([key, value, how]) => {
      const copy: Record<string, unknown> = { ...valid };
      if (how === 0) delete copy[key];
      else if (how === 1) return copy;
      else copy[key] = value;
      return copy;
    });
}

const agree = (schema: Schema, value: unknown): boolean => isValid(schema, value) === v.is(schema, value);

describe('compiled schema predicates answer as v.is', () => {
  it('compiles the schemas checked on every write (else the fast path is silently lost)', () => {
    for (const schema of [
      agentEventSchema,
      agentProfileSchema,
      sessionSummarySchema,
      ...Object.values(profileEntries),
      ...Object.values(eventEntries),
      ...Object.values(sessionSummaryEntries),
    ]) {
      expect(compile(schema)).toBeTypeOf('function');
    }
  });

  it('every field schema, on edge values and anything', () => {
    const fields = [
      ...Object.values(profileEntries),
      ...Object.values(eventEntries),
      ...Object.values(sessionSummaryEntries),
      ...Object.values(dashboardStateEntries),
    ];
    fc.assert(
      fc.property(fc.constantFrom(...fields), edgeValue, (schema, value) => agree(schema, value)),
      { numRuns: 3000 },
    );
  });

  it('whole records with one field changed or removed', () => {
    const cases: Array<[Schema, Record<string, unknown>]> = [
      [agentEventSchema, makeEvent() as unknown as Record<string, unknown>],
      [agentProfileSchema, makeProfile() as unknown as Record<string, unknown>],
      [sessionSummarySchema, makeSession() as unknown as Record<string, unknown>],
    ];
    for (const [schema, valid] of cases) {
      expect(isValid(schema, valid)).toBe(true);
      fc.assert(
        fc.property(variantOf(valid), (value) => agree(schema, value)),
        { numRuns: 1000 },
      );
    }
  });

  it('records that are not plain objects: arrays, inherited keys, getters, null prototypes', () => {
    const event = makeEvent() as unknown as Record<string, unknown>;
    const inherited = Object.create(event);
    const withGetter = { ...event };
    let reads = 0;
    Object.defineProperty(withGetter, 'status', {
      enumerable: true,
      get: () => (++reads === 1 ? 'success' : 'bogus'),
    });
    const nullPrototype = Object.assign(Object.create(null), event);
    for (const value of [[], [event], inherited, nullPrototype, 'event', 42]) {
      expect(agree(agentEventSchema, value)).toBe(true);
    }
    expect(isValid(agentEventSchema, withGetter)).toBe(true);
    expect(reads).toBe(1); // read once, as valibot reads it
  });

  it('each node type alone, where the file format does not isolate it', () => {
    const schemas: Schema[] = [
      v.number(),
      v.looseObject({ a: v.custom(() => true) }),
      v.array(v.number()),
      v.union([v.literal(Number.NaN), v.literal(-0), v.string()]),
      v.picklist(['a', 'b']),
      v.pipe(v.array(v.string()), v.minLength(1)),
      v.optional(v.number()),
      v.date(),
      v.pipe(
        v.string(),
        v.check((text) => text.length % 2 === 0),
      ),
      v.strictObject({ a: v.number(), b: v.optional(v.string()) }),
    ];
    for (const schema of schemas) {
      fc.assert(
        fc.property(
          fc.oneof(edgeValue, fc.record({ a: edgeValue }, { requiredKeys: [] }), fc.array(edgeValue)),
          (value) => agree(schema, value),
        ),
        { numRuns: 500 },
      );
    }
  });

  it('records with own __proto__/constructor keys, non-enumerable or inherited fields, nesting in arrays, boxed and sparse values', () => {
    const anything = fc.anything({
      withBoxedValues: true,
      withNullPrototype: true,
      withObjectString: true,
      withSparseArray: true,
      withBigInt: true,
      withDate: true,
      maxDepth: 2,
    });
    const cases: Array<[v.GenericSchema, Record<string, unknown>]> = [
      [agentEventSchema, makeEvent() as unknown as Record<string, unknown>],
      [agentProfileSchema, makeProfile() as unknown as Record<string, unknown>],
      [sessionSummarySchema, makeSession() as unknown as Record<string, unknown>],
    ];
    for (const [schema, valid] of cases) {
      const keys = [...Object.keys(valid), '__proto__', 'constructor', 'toString'];
      const edit = fc.tuple(fc.constantFrom(...keys), anything, fc.nat(4));
      fc.assert(
        fc.property(fc.array(edit, { maxLength: 4 }), fc.boolean(), fc.boolean(), (edits, viaJson, bare) => {
          let record: unknown = bare ? Object.assign(Object.create(null), valid) : { ...valid };
          for (const [key, value, how] of edits) {
            const target = record as Record<string, unknown>;
            const define = (enumerable: boolean, to: unknown) =>
              Object.defineProperty(target, key, {
                value: to,
                enumerable,
                configurable: true,
                writable: true,
              });
            if (how === 0) delete target[key];
            else if (how === 1) define(true, value);
            else if (how === 2) record = Object.setPrototypeOf({ ...target }, { [key]: value });
            else if (how === 3) define(false, valid[key]);
            else record = [record];
          }
          if (viaJson) {
            try {
              record = JSON.parse(JSON.stringify(record) ?? 'null');
            } catch {
              return true; // BigInt: not a value the store validates
            }
          }
          return isValid(schema, record) === v.is(schema, record);
        }),
        { numRuns: 1500 },
      );
    }
  });

  it('a schema with a node it does not compile is answered by v.is', () => {
    const schemas: Schema[] = [
      v.optional(v.string(), 'a default'),
      v.looseObject({ a: v.optional(v.number()) }),
      v.strictObject({ a: v.nullish(v.number()) }),
      v.pipe(
        v.string(),
        v.transform((text) => text.length),
        v.minValue(2),
      ),
      dashboardStateSchema,
    ];
    for (const schema of schemas) {
      fc.assert(
        fc.property(fc.oneof(edgeValue, fc.record({ a: edgeValue })), (value) => agree(schema, value)),
        { numRuns: 300 },
      );
    }
    expect(compile(v.optional(v.string(), 'a default'))).toBeUndefined();
  });
});
