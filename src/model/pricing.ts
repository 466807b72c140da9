/**
 * Cost of a call from its token counts. Prices are USD per 1,000 tokens, and the cost is computed
 * as the Python implementation does: `round(input_tokens * input / 1000 + output_tokens * output
 * / 1000, 6)`.
 */
export interface ModelPrice {
  /** USD per 1,000 input tokens. */
  inputPer1k: number;
  /** USD per 1,000 output tokens. */
  outputPer1k: number;
}

/**
 * List prices of the Anthropic models, USD per 1,000 tokens. The Python implementation priced
 * `claude-haiku-4-5` and `claude-sonnet-4-5` exactly so (checked against its fixture file).
 * Override or extend with the `prices` option of `AgentMetrics`.
 */
export const DEFAULT_MODEL_PRICES: Readonly<Record<string, Readonly<ModelPrice>>> = Object.freeze({
  'claude-opus-4-5': { inputPer1k: 0.005, outputPer1k: 0.025 },
  'claude-opus-4-1': { inputPer1k: 0.015, outputPer1k: 0.075 },
  'claude-opus-4': { inputPer1k: 0.015, outputPer1k: 0.075 },
  'claude-sonnet-4-5': { inputPer1k: 0.003, outputPer1k: 0.015 },
  'claude-sonnet-4': { inputPer1k: 0.003, outputPer1k: 0.015 },
  'claude-3-7-sonnet': { inputPer1k: 0.003, outputPer1k: 0.015 },
  'claude-haiku-4-5': { inputPer1k: 0.001, outputPer1k: 0.005 },
  'claude-3-5-haiku': { inputPer1k: 0.0008, outputPer1k: 0.004 },
});

/**
 * Price of a model that is in no table: Sonnet's, the usual model of an orchestrator's agents.
 * An unknown model is not an error; override with the `unknownModelPrice` option.
 */
export const UNKNOWN_MODEL_PRICE: Readonly<ModelPrice> = Object.freeze({
  inputPer1k: 0.003,
  outputPer1k: 0.015,
});

// Dated snapshots (`claude-sonnet-4-5-20250929`, Vertex's `claude-sonnet-4-5@20250929`) cost what
// their family costs.
const SNAPSHOT_SUFFIX = /[-@]\d{8}$/;
// Anthropic's aliases: `claude-3-5-haiku-latest` is the family's newest snapshot, and
// `claude-opus-4-0` (`-<major>-0`) the first release of `claude-opus-4`. Only a `-0` minor: any
// other (`claude-opus-4-1`) is another model, with a price of its own or the unknown-model one.
const LATEST_SUFFIX = /-latest$/;
const FIRST_MINOR_SUFFIX = /(-\d+)-0$/;

/**
 * The price of `model` in `prices`: its exact name first, then its name without a date suffix,
 * then without an alias suffix (`-latest`, or a `-0` minor version after a major one), else
 * `fallback`. Each step only finds a name the table holds.
 */
export function priceOf(
  model: string,
  prices: Readonly<Record<string, ModelPrice>>,
  fallback: ModelPrice,
): ModelPrice {
  if (Object.hasOwn(prices, model)) return prices[model] as ModelPrice;
  const family = model.replace(SNAPSHOT_SUFFIX, '');
  if (Object.hasOwn(prices, family)) return prices[family] as ModelPrice;
  const aliased = family.replace(LATEST_SUFFIX, '').replace(FIRST_MINOR_SUFFIX, '$1');
  if (Object.hasOwn(prices, aliased)) return prices[aliased] as ModelPrice;
  return fallback;
}

/** Costs are stored in whole micro-dollars (6 decimals), as the Python implementation rounds them. */
export const COST_DECIMALS = 6;

/**
 * USD for one call: the same arithmetic, in the same order, as the Python implementation, rounded
 * to 6 decimals like its `round(cost, 6)` (`roundCost`).
 */
export function costOf(price: ModelPrice, inputTokens: number, outputTokens: number): number {
  const raw = (inputTokens * price.inputPer1k) / 1000 + (outputTokens * price.outputPer1k) / 1000;
  return roundCost(raw);
}

/**
 * `value` rounded to 6 decimals as Python's `round(value, 6)` rounds a float: the exact binary
 * value to the nearest multiple of 10^-6, an exact tie to the even one, then the nearest double.
 * `toFixed` rounds the exact value as well, but takes the larger multiple on a tie
 * (`0.0078125.toFixed(6)` is `0.007813`, Python's is 0.007812), so a tie is told apart exactly:
 * a double lies halfway between two multiples of 10^-6 only when it is an odd multiple of 2^-7
 * (`value · 2 · 10^6` odd needs 5^6 to divide the numerator of `value`, a power-of-two
 * fraction), which `value · 128`, exact in binary, shows.
 */
export function roundCost(value: number): number {
  if (value < 0) return -roundCost(-value);
  const fixed = value.toFixed(COST_DECIMALS);
  const scaled = value * 128;
  // Not a tie, or a tie whose larger neighbour (toFixed's pick) is already the even one.
  if (!Number.isInteger(scaled) || scaled % 2 === 0 || Number(fixed.at(-1)) % 2 === 0) return Number(fixed);
  // The smaller neighbour, in whole micro-dollars (a BigInt: exact at any size).
  return Number(`${BigInt(fixed.replace('.', '')) - 1n}e-${COST_DECIMALS}`);
}
