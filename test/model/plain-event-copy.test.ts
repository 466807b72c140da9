import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plainEventCopy } from '../../src/model/operations.js';
import type { AgentEvent } from '../../src/model/types.js';
import { makeEvent } from '../helpers/builders.js';

/** What the store computed the stored event from before `plainEventCopy`: its JSON read back. */
const roundTrip = (value: unknown) => JSON.parse(JSON.stringify(value));

/** Values JSON keeps as they are, and the ones it changes or cannot write. */
const scalar = fc.oneof(
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.double(),
  fc.constantFrom(-0, Number.NaN, Number.POSITIVE_INFINITY, undefined),
);
const value = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 2, arbitrary: fc.array(scalar, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.sparseArray(fc.string(), { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string(), scalar, { maxKeys: 2 }) },
  { weight: 1, arbitrary: fc.constantFrom(new Date(0), [[1]], () => 1) },
);
const record = fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', '1', 'toJSON')), value, {
  maxKeys: 6,
});

describe('plainEventCopy', () => {
  it('gives exactly what the JSON round trip gives (values, -0 and key order), or nothing', () => {
    fc.assert(
      fc.property(record, (input) => {
        const copy = plainEventCopy(input as AgentEvent);
        if (copy === undefined) return;
        const expected = roundTrip(input);
        // toStrictEqual tells -0 from 0 and own `__proto__` keys from prototypes.
        expect(copy).toStrictEqual(expected);
        expect(Object.keys(copy)).toEqual(Object.keys(expected));
        expect(JSON.stringify(copy)).toBe(JSON.stringify(input));
        expect(copy).not.toBe(input);
      }),
      { numRuns: 2000 },
    );
  });

  it('copies the events the domain API builds (the fast path is taken), lists included', () => {
    const event = makeEvent({ artifacts: ['commit:abc', 'pr:#1'] });
    const copy = plainEventCopy(event);
    expect(copy).toStrictEqual(roundTrip(event));
    expect(copy?.artifacts).not.toBe(event.artifacts);
  });

  it('leaves to the JSON round trip what it would change', () => {
    const event = makeEvent();
    const changed: Array<[string, unknown]> = [
      ['duration_seconds', -0],
      ['estimated_cost_usd', Number.NaN],
      ['input_tokens', Number.POSITIVE_INFINITY],
      ['extra', undefined],
      ['extra', { nested: 1 }],
      ['extra', new Date(0)],
      ['artifacts', ['a', undefined]],
      ['artifacts', Array.from({ length: 2 })],
      ['artifacts', [['nested']]],
      ['toJSON', 'a key JSON.stringify would not call, but a copy would carry'],
    ];
    for (const [key, replaced] of changed) {
      expect(plainEventCopy({ ...event, [key]: replaced } as AgentEvent), key).toBeUndefined();
    }
    class Event {}
    expect(plainEventCopy(Object.assign(new Event(), event) as AgentEvent)).toBeUndefined();
  });

  it('leaves everything to the JSON round trip while Object.prototype has a toJSON', () => {
    const prototype = Object.prototype as { toJSON?: () => string };
    prototype.toJSON = () => 'replaced';
    try {
      expect(plainEventCopy(makeEvent())).toBeUndefined();
    } finally {
      delete prototype.toJSON;
    }
  });

  it('leaves to the JSON round trip a value that throws, a key Object.prototype has, a hidden toJSON', () => {
    const throwing = Object.defineProperty(makeEvent(), 'ticket_key', {
      enumerable: true,
      get: () => {
        throw new Error('boom');
      },
    });
    expect(plainEventCopy(throwing)).toBeUndefined();
    expect(
      plainEventCopy(
        new Proxy(makeEvent(), {
          ownKeys: () => {
            throw new Error('boom');
          },
        }),
      ),
    ).toBeUndefined();
    for (const descriptor of [
      { set() {}, get: () => 'inherited' },
      { value: 'inherited', writable: false },
    ]) {
      Object.defineProperty(Object.prototype, 'extra', { ...descriptor, configurable: true });
      try {
        // An assignment would call the setter, or throw: the round trip keeps the own value.
        expect(plainEventCopy({ ...makeEvent(), extra: 'own' })).toBeUndefined();
      } finally {
        delete (Object.prototype as { extra?: unknown }).extra;
      }
    }
    // A `toJSON` that Object.keys does not list, on the event or on a list in it.
    const hidden = (target: object) => Object.defineProperty(target, 'toJSON', { value: () => 'replaced' });
    expect(plainEventCopy(hidden(makeEvent()) as AgentEvent)).toBeUndefined();
    expect(plainEventCopy(makeEvent({ artifacts: hidden(['a']) as string[] }))).toBeUndefined();
  });

  it('reads each value once, so the copy is what a getter gave that time', () => {
    let reads = 0;
    const event = makeEvent() as AgentEvent & { ticket_key: string };
    Object.defineProperty(event, 'ticket_key', {
      enumerable: true,
      get: () => `AI-${++reads}`,
    });
    const copy = plainEventCopy(event);
    expect(reads).toBe(1);
    expect(copy?.ticket_key).toBe('AI-1');
  });
});
