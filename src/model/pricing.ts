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

/**
 * The price of `model` in `prices`: its exact name first, then its name without a date suffix,
 * else `fallback`.
 */
export function priceOf(
  model: string,
  prices: Readonly<Record<string, ModelPrice>>,
  fallback: ModelPrice,
): ModelPrice {
  if (Object.hasOwn(prices, model)) return prices[model] as ModelPrice;
  const family = model.replace(SNAPSHOT_SUFFIX, '');
  if (Object.hasOwn(prices, family)) return prices[family] as ModelPrice;
  return fallback;
}

/** Costs are stored in whole micro-dollars (6 decimals), as the Python implementation rounds them. */
export const COST_DECIMALS = 6;

/**
 * USD for one call: the same arithmetic, in the same order, as the Python implementation, rounded
 * to 6 decimals like its `round(cost, 6)` (both round the exact binary value).
 */
export function costOf(price: ModelPrice, inputTokens: number, outputTokens: number): number {
  const raw = (inputTokens * price.inputPer1k) / 1000 + (outputTokens * price.outputPer1k) / 1000;
  return Number(raw.toFixed(COST_DECIMALS));
}
