import { types } from 'node:util';
import * as v from 'valibot';
import { MetricsError } from '../errors.js';
import { DEFAULT_MODEL_PRICES, type ModelPrice, UNKNOWN_MODEL_PRICE } from '../model/pricing.js';
import {
  DEFAULT_WORDING,
  describeIssues,
  finiteNumber,
  integer,
  objectOnly,
  type Schema,
  safeParse,
} from '../model/schema.js';
import type { MetricsBackend } from '../store/backend.js';
import { MetricsStore } from '../store/metrics-store.js';
import type { MetricsStoreOptions } from '../store/options.js';

/** Settings of `AgentMetrics` itself, whichever backend it writes to. */
export interface AgentMetricsSettings {
  /**
   * `false`: a failure to record (I/O error, lock timeout, invalid input, unknown session) is
   * passed to `onError` and the recording call resolves without throwing (see each method for
   * what it resolves to), so metrics never crash the agent. `true`: recording calls throw.
   * @default false
   */
  strict?: boolean;
  /**
   * Receives every recording failure when `strict` is false (a `MetricsError`: branch on its
   * `code`; an error that had no code arrives as E_IO when it is errno-style, else as E_INTERNAL,
   * the original as `cause`), and, whatever `strict` says, a repair a successful call made on the way: a malformed
   * `sessions_in_progress` moved aside (E_INVALID_STATE, see `startSession`). An exception thrown
   * by the callback itself, or the rejection of the promise an `async` callback returns, is
   * ignored: it must not crash the host.
   * @default emits a Node process warning (`AgentMetricsWarning`) with the error's message and code
   */
  onError?: (error: MetricsError) => void;
  /**
   * Prices in USD per 1,000 input / output tokens, by model name; merged over the default table
   * (entries here win). A dated snapshot name (`claude-sonnet-4-5-20250929`) and an alias
   * (`claude-3-5-haiku-latest`, `claude-opus-4-0`) use their family's price (see `priceOf`).
   * @default DEFAULT_MODEL_PRICES
   */
  prices?: Readonly<Record<string, ModelPrice>>;
  /**
   * Price of a model found in no table (not an error).
   * @default UNKNOWN_MODEL_PRICE (Sonnet's: 0.003 in, 0.015 out per 1,000 tokens)
   */
  unknownModelPrice?: ModelPrice;
  /**
   * Sessions in progress kept in the file. A session loop that crashed never ends its session;
   * beyond this many, the oldest started are dropped (their events stay counted everywhere).
   * @default 100
   */
  maxOpenSessions?: number;
  /**
   * Source of "now" for default timestamps and `trackAgent` durations. For tests. Must return a
   * valid `Date`: anything else (`() => Date.now()`, a number) fails the call that read it with
   * E_INVALID_OPTIONS, which goes to `onError` like any recording failure unless `strict`.
   * @default () => new Date()
   */
  clock?: () => Date;
}

/**
 * `AgentMetrics` options: settings, plus either the options of a `MetricsStore` (a JSON file in
 * `dir`) or an existing backend as `store`, not both (E_INVALID_OPTIONS: configure that backend
 * itself). An unknown option, e.g. a misspelt `stict`, is E_INVALID_OPTIONS too.
 */
export type AgentMetricsOptions = AgentMetricsSettings &
  ((MetricsStoreOptions & { store?: undefined }) | { store: MetricsBackend });

export interface ResolvedAgentMetricsOptions {
  backend: MetricsBackend;
  strict: boolean;
  onError: (error: MetricsError) => void;
  prices: Readonly<Record<string, ModelPrice>>;
  unknownModelPrice: ModelPrice;
  maxOpenSessions: number;
  clock: () => Date;
}

const nonNegative = v.pipe(finiteNumber, v.minValue(0));
const price = objectOnly(v.strictObject({ inputPer1k: nonNegative, outputPer1k: nonNegative }));

const settingsSchema = {
  strict: v.optional(v.boolean()),
  onError: v.optional(v.function()),
  prices: v.optional(objectOnly(v.record(v.string(), price))),
  unknownModelPrice: v.optional(price),
  maxOpenSessions: v.optional(v.pipe(integer, v.minValue(1))),
  clock: v.optional(v.function()),
  store: v.optional(
    objectOnly(
      v.looseObject({ load: v.function(), update: v.function() }, 'expected a MetricsBackend'),
      'expected a MetricsBackend',
    ),
  ),
} satisfies Record<keyof AgentMetricsSettings | 'store', Schema>;

/**
 * Every `MetricsStore` option, so that a misspelt option (`stict`) is an error rather than
 * silently ignored. A `Record` over the option names: a new store option fails to compile here
 * until it is listed. Their values are checked by `MetricsStore` itself.
 */
const STORE_OPTIONS: Record<keyof MetricsStoreOptions, true> = {
  projectName: true,
  dir: true,
  maxEvents: true,
  maxSessions: true,
  lockTimeoutMs: true,
  lockLeaseMs: true,
  lockWait: true,
  fileMode: true,
  durability: true,
  checkpointBytes: true,
  checkpointIdleMs: true,
  onRecover: true,
  fileSystem: true,
};

const optionsSchema = objectOnly(
  v.strictObject(
    {
      ...settingsSchema,
      ...Object.fromEntries(Object.keys(STORE_OPTIONS).map((key) => [key, v.optional(v.unknown())])),
    },
    'expected an object',
  ),
  'expected an object',
);

const WORDING = { ...DEFAULT_WORDING, unknown: 'unknown option' };

const SETTINGS_KEYS = Object.keys(settingsSchema);

function invalid(problems: string[]): MetricsError {
  return new MetricsError('E_INVALID_OPTIONS', `invalid AgentMetrics options: ${problems.join('; ')}`);
}

function warn(error: MetricsError): void {
  process.emitWarning(error.message, { type: 'AgentMetricsWarning', code: error.code });
}

/** The store options alone: everything that is not an `AgentMetrics` setting. */
function storeOptionsOf(options: AgentMetricsOptions): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([key]) => !SETTINGS_KEYS.includes(key)));
}

/**
 * Applies the defaults in one place and builds the backend; never mutates the caller's object.
 * Throws E_INVALID_OPTIONS (whatever `strict` says: this is a programming error, found at start).
 */
export function resolveAgentMetricsOptions(options: AgentMetricsOptions): ResolvedAgentMetricsOptions {
  const parsed = safeParse(optionsSchema, options);
  if (!parsed.success) {
    throw invalid(
      describeIssues(optionsSchema, parsed.issues, [], WORDING).map(
        (issue) => `${issue.path}: ${issue.message}`,
      ),
    );
  }
  const storeOptions = storeOptionsOf(options);
  let backend: MetricsBackend;
  if (options.store !== undefined) {
    // The backend was configured when it was built: options for a store we would not build are
    // a mistake (e.g. `dir` meant for it), not something to ignore. Undefined ones count as absent.
    const extra = Object.keys(storeOptions).filter((key) => storeOptions[key] !== undefined);
    if (extra.length > 0) {
      throw invalid([
        `store: a backend given as store takes no MetricsStore options (got ${extra.join(', ')}); configure the backend itself`,
      ]);
    }
    backend = options.store;
  } else {
    backend = new MetricsStore(storeOptions as unknown as MetricsStoreOptions);
  }
  return {
    backend,
    strict: options.strict ?? false,
    onError: options.onError ?? warn,
    prices: { ...DEFAULT_MODEL_PRICES, ...options.prices },
    unknownModelPrice: options.unknownModelPrice ?? UNKNOWN_MODEL_PRICE,
    maxOpenSessions: options.maxOpenSessions ?? 100,
    clock: options.clock === undefined ? () => new Date() : checkedClock(options.clock),
  };
}

/**
 * `clock`, whose result is checked at each reading: only its type is known when the options are
 * checked, and a clock returning a number (`() => Date.now()`, an easy slip) made the calls that
 * read it fail with a bare TypeError, which in `trackAgent` escaped the non-strict guard and
 * replaced the work's own result or error.
 */
function checkedClock(clock: () => Date): () => Date {
  return () => {
    const now: unknown = clock();
    if (types.isDate(now) && !Number.isNaN(now.getTime())) return now;
    const got = types.isDate(now) ? 'an invalid Date' : now === null ? 'null' : typeof now;
    throw invalid([`clock: expected a function that returns a valid Date, got ${got}`]);
  };
}
