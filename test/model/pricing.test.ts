import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { costOf, DEFAULT_MODEL_PRICES, priceOf, UNKNOWN_MODEL_PRICE } from '../../src/model/pricing.js';
import type { DashboardState } from '../../src/model/types.js';

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/python-written/.agent_metrics.json', import.meta.url), 'utf8'),
) as DashboardState;

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

  it('computes USD per 1,000 tokens', () => {
    expect(costOf({ inputPer1k: 0.003, outputPer1k: 0.015 }, 1000, 1000)).toBe(0.018);
    // Whole micro-dollars: 1 token at 0.0008 per 1,000 is 0.0000008, stored as 0.000001.
    expect(costOf({ inputPer1k: 0.0008, outputPer1k: 0 }, 1, 0)).toBe(0.000001);
    expect(costOf(UNKNOWN_MODEL_PRICE, 0, 0)).toBe(0);
  });
});
