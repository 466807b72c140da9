import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  costOf,
  DEFAULT_MODEL_PRICES,
  priceOf,
  roundCost,
  UNKNOWN_MODEL_PRICE,
} from '../../src/model/pricing.js';
import type { DashboardState } from '../../src/model/types.js';

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/python-written/.agent_metrics.json', import.meta.url), 'utf8'),
) as DashboardState;

/**
 * Python's `round(value, 6)` for a finite double ≥ 0, the slow way: the exact binary value
 * `mantissa · 2^exponent` to the nearest multiple of 10^-6 in BigInt arithmetic, a tie to the even
 * one, then the double nearest that decimal.
 */
function pythonRound6(value: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  const exponent = (biased === 0 ? 1 : biased) - 1075;
  const micros = mantissa * 10n ** 6n;
  let units: bigint;
  if (exponent >= 0) {
    units = micros << BigInt(exponent);
  } else {
    const divisor = 1n << BigInt(-exponent);
    const quotient = micros / divisor;
    const twice = 2n * (micros % divisor);
    units = twice > divisor || (twice === divisor && quotient % 2n === 1n) ? quotient + 1n : quotient;
  }
  return Number(`${units}e-6`);
}

describe('pricing', () => {
  it('prices every event of the Python fixture exactly as the Python implementation did', () => {
    expect(fixture.events.length).toBeGreaterThan(0);
    for (const event of fixture.events) {
      const price = priceOf(event.model_used, DEFAULT_MODEL_PRICES, UNKNOWN_MODEL_PRICE);
      expect(price).not.toBe(UNKNOWN_MODEL_PRICE);
      expect(costOf(price, event.input_tokens, event.output_tokens)).toBe(event.estimated_cost_usd);
    }
  });

  it('finds dated snapshots by their family and falls back for unknown models', () => {
    const sonnet = DEFAULT_MODEL_PRICES['claude-sonnet-4-5'];
    expect(priceOf('claude-sonnet-4-5-20250929', DEFAULT_MODEL_PRICES, UNKNOWN_MODEL_PRICE)).toBe(sonnet);
    expect(priceOf('claude-sonnet-4-5@20250929', DEFAULT_MODEL_PRICES, UNKNOWN_MODEL_PRICE)).toBe(sonnet);
    const fallback = { inputPer1k: 1, outputPer1k: 2 };
    expect(priceOf('gpt-something', DEFAULT_MODEL_PRICES, fallback)).toBe(fallback);
    expect(priceOf('', DEFAULT_MODEL_PRICES, fallback)).toBe(fallback);
    // Inherited keys of a plain object are not models.
    expect(priceOf('toString', DEFAULT_MODEL_PRICES, fallback)).toBe(fallback);
  });

  it('prices Anthropic aliases (-latest, a -0 minor) as their family, and no other minor version', () => {
    const price = (model: string, prices = DEFAULT_MODEL_PRICES) =>
      priceOf(model, prices, UNKNOWN_MODEL_PRICE);
    expect(price('claude-opus-4-0')).toBe(DEFAULT_MODEL_PRICES['claude-opus-4']);
    expect(price('claude-sonnet-4-0')).toBe(DEFAULT_MODEL_PRICES['claude-sonnet-4']);
    expect(price('claude-3-5-haiku-latest')).toBe(DEFAULT_MODEL_PRICES['claude-3-5-haiku']);
    expect(price('claude-3-7-sonnet-latest')).toBe(DEFAULT_MODEL_PRICES['claude-3-7-sonnet']);
    expect(price('claude-opus-4-1')).toBe(DEFAULT_MODEL_PRICES['claude-opus-4-1']);
    // A table without claude-opus-4-1 does not lend it claude-opus-4's price.
    const { 'claude-opus-4-1': _, ...withoutOpus41 } = DEFAULT_MODEL_PRICES;
    expect(price('claude-opus-4-1', withoutOpus41)).toBe(UNKNOWN_MODEL_PRICE);
    expect(price('claude-opus-4-1-20250805', withoutOpus41)).toBe(UNKNOWN_MODEL_PRICE);
    // A name the table holds wins over the alias rule; an alias of a family it lacks is unknown.
    const own = { inputPer1k: 9, outputPer1k: 9 };
    expect(price('claude-opus-4-0', { ...DEFAULT_MODEL_PRICES, 'claude-opus-4-0': own })).toBe(own);
    expect(price('claude-9-latest')).toBe(UNKNOWN_MODEL_PRICE);
    expect(price('claude-x-0')).toBe(UNKNOWN_MODEL_PRICE);
  });

  it('computes USD per 1,000 tokens', () => {
    expect(costOf({ inputPer1k: 0.003, outputPer1k: 0.015 }, 1000, 1000)).toBe(0.018);
    // Whole micro-dollars: 1 token at 0.0008 per 1,000 is 0.0000008, stored as 0.000001.
    expect(costOf({ inputPer1k: 0.0008, outputPer1k: 0 }, 1, 0)).toBe(0.000001);
    expect(costOf(UNKNOWN_MODEL_PRICE, 0, 0)).toBe(0);
  });

  it('rounds an exact tie to the even micro-dollar, as Python’s round(cost, 6) does', () => {
    // 125 × 0.0625 / 1000 is exactly 1/128 = 0.0078125: toFixed(6) gave 0.007813.
    expect(costOf({ inputPer1k: 0.0625, outputPer1k: 0 }, 125, 0)).toBe(0.007812);
    expect(roundCost(0.0078125)).toBe(0.007812);
    expect(roundCost(3 / 128)).toBe(0.023438); // 0.0234375: the even neighbour is the larger one
    expect(roundCost(5 / 128)).toBe(0.039062);
    expect(roundCost(1 + 1 / 128)).toBe(1.007812);
    expect(roundCost(2 ** 40 + 1 / 128)).toBe(2 ** 40 + 0.007812);
    // Not ties: the nearest micro-dollar of the binary value (0.0000015 is a little above 1.5e-6).
    expect(roundCost(0.0000015)).toBe(0.000002);
    expect(roundCost(0.0000025)).toBe(0.000003);
    expect(roundCost(1 / 256)).toBe(0.003906);
  });

  it('rounds every double as the exact BigInt reference of Python’s round(value, 6) does', () => {
    const ties = fc.integer({ min: 0, max: 2 ** 40 }).map((j) => (2 * j + 1) / 128);
    const costs = fc
      .tuple(
        fc.nat({ max: 2_000_000 }),
        fc.nat({ max: 200_000 }),
        fc.constantFrom(0.0625, 0.003, 0.015, 0.0008, 0.004, 0.005, 0.025, 0.0001220703125),
      )
      .map(([input, output, price]) => (input * price) / 1000 + (output * price) / 1000);
    const anyDouble = fc.double({ min: 0, max: 1e12, noNaN: true });
    fc.assert(
      fc.property(fc.oneof(ties, costs, anyDouble), (value) => {
        expect(roundCost(value)).toBe(pythonRound6(value));
      }),
      { numRuns: 3000 },
    );
  });
});
