import { types } from 'node:util';
import * as v from 'valibot';
import { InvalidInputError } from '../errors.js';
import { LINES_ARTIFACT } from '../model/artifacts.js';
import { describeIssues, objectOnly, type Schema, safeParse } from '../model/schema.js';
import { compiledPredicate } from '../model/schema-predicate.js';
import {
  EVENT_STATUSES,
  type EventStatus,
  SESSION_STATUSES,
  SESSION_TYPES,
  type SessionType,
} from '../model/types.js';

/** A point in time: a `Date`, or an ISO 8601 date-time string (`Z` or an offset). */
export type TimeInput = Date | string;

/** What an agent reports about one invocation (`AgentMetrics.recordEvent`). */
export interface EventInput {
  /** Agent name, e.g. `coding`. Required. */
  agentName: string;
  /** `success`, `error`, `timeout` or `blocked`. Required. */
  status: EventStatus;
  /** Session the event belongs to (from `startSession`). @default '' (no session) */
  sessionId?: string;
  /** Ticket worked on, e.g. `AI-42`. @default '' */
  ticketKey?: string;
  /** Model used; prices the call. @default '' (priced as an unknown model) */
  model?: string;
  /** At most `MAX_TOKENS_PER_CALL`. @default 0 */
  inputTokens?: number;
  /** At most `MAX_TOKENS_PER_CALL`. @default 0 */
  outputTokens?: number;
  /** @default endedAt minus durationSeconds, or endedAt */
  startedAt?: TimeInput;
  /**
   * @default startedAt plus durationSeconds when both are given, else now, or startedAt when that
   * is later (a start stamped by a clock ahead of this one: the event then lasts 0 seconds)
   */
  endedAt?: TimeInput;
  /** @default endedAt minus startedAt, in seconds */
  durationSeconds?: number;
  /** Actual cost when the caller knows it (e.g. from the SDK). @default priced from the tokens */
  costUsd?: number;
  /** E.g. `commit:abc123`, `pr:#42`, `file:src/app.ts`; see `ARTIFACT_RULES`. @default [] */
  artifacts?: readonly string[];
  /** @default '' */
  errorMessage?: string;
}

/** `AgentMetrics.startSession` input. */
export interface SessionInput {
  /** @default 'continuation' */
  type?: SessionType;
  /** Your own session id, when the orchestrator already has one. @default crypto.randomUUID() */
  sessionId?: string;
  /** @default now */
  startedAt?: TimeInput;
}

/** `AgentMetrics.endSession` extra input. */
export interface EndSessionInput {
  /** @default now */
  endedAt?: TimeInput;
}

const OBJECT = 'expected an object';
const COUNT = 'expected a non-negative integer';
const AMOUNT = 'expected a non-negative number';
const TEXT = 'expected a string';

const count = v.pipe(v.number(COUNT), v.safeInteger(COUNT), v.minValue(0, COUNT));

/**
 * The most tokens one call may report, as input or as output: 10^12, about a thousand times the
 * largest context window offered today. A larger count is a bug (an uninitialised counter, a
 * cumulative figure passed as a per-call one), and once recorded it can never be undone: a
 * single call of Number.MAX_SAFE_INTEGER tokens put the project's `total_tokens` at the largest
 * integer the file can hold, and every later event failed. Far enough below that limit that
 * ~9,000 such calls fit in one project.
 */
export const MAX_TOKENS_PER_CALL = 1_000_000_000_000;
const TOKENS = `expected a non-negative integer of at most ${MAX_TOKENS_PER_CALL} (MAX_TOKENS_PER_CALL) tokens per call`;
const tokens = v.pipe(count, v.maxValue(MAX_TOKENS_PER_CALL, TOKENS));
const amount = v.pipe(v.number(AMOUNT), v.finite(AMOUNT), v.minValue(0, AMOUNT));
const text = v.string(TEXT);
// Names are keys (an agent's profile, a session): one of spaces only is a mistake, not a name.
const name = v.pipe(
  v.string('expected a non-empty string'),
  v.minLength(1, 'expected a non-empty string'),
  v.check((value) => value.trim() !== '', 'expected a name, not only spaces'),
);
// A missing required field says so, rather than "expected a string".
const WORDING = { missing: () => 'required field is missing', unknown: 'unknown field' };
const TIME = 'expected a valid Date or an ISO 8601 date-time such as 2026-01-31T12:00:00Z';
/**
 * Times a timestamp of the shared file can hold: a 4-digit year (a later one is written as
 * `+010000-…`), and not year 0, which Python's `datetime` (MINYEAR = 1) cannot read.
 */
export const MIN_TIME_MS = -62_135_596_800_000; // 0001-01-01T00:00:00.000Z
export const MAX_TIME_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
/** Why a time outside that range is rejected. */
export const OUT_OF_RANGE = 'expected a time between years 0001 and 9999 (UTC)';

/** Whether `ms` can be stored as a timestamp of the file format (`false` for NaN). */
export function isStorableTime(ms: number): boolean {
  return ms >= MIN_TIME_MS && ms <= MAX_TIME_MS;
}

/**
 * RFC 3339 date-time with seconds and a `Z` or `±hh:mm` offset, real calendar days only (no
 * February 30; February 29 in leap years), as the previous validator (zod's `iso.datetime`) accepted.
 */
const ISO_DATE_TIME = new RegExp(
  '^(?:(?:\\d\\d[2468][048]|\\d\\d[13579][26]|\\d\\d0[48]|[02468][048]00|[13579][26]00)-02-29|' +
    '\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|02-(?:0[1-9]|1\\d|2[0-8])))' +
    'T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d+)?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$',
);
// A year ≥ 10000 would be written as `+010000-…`, which the state schema rejects later, under the
// lock (E_INVALID_STATE): reject it here, as the input error it is. Checked only for a valid Date
// or date-time (a pipe stops at its first issue): anything else already has its issue.
const time = v.union(
  [
    v.pipe(
      v.date(TIME),
      v.check((date) => isStorableTime(date.getTime()), OUT_OF_RANGE),
    ),
    v.pipe(
      v.string(TIME),
      v.regex(ISO_DATE_TIME, TIME),
      v.check((value) => isStorableTime(Date.parse(value)), OUT_OF_RANGE),
    ),
  ],
  TIME,
);
const artifact = v.pipe(
  text,
  v.check(
    (value) => !value.startsWith('lines:') || LINES_ARTIFACT.test(value),
    'expected lines:+<added>/-<removed>, e.g. lines:+120/-8',
  ),
);
const oneOf = (values: readonly string[]) => `expected one of ${values.map((v) => `'${v}'`).join(', ')}`;

const eventInputEntries = {
  agentName: name,
  status: v.picklist(EVENT_STATUSES, oneOf(EVENT_STATUSES)),
  sessionId: v.optional(text),
  ticketKey: v.optional(text),
  model: v.optional(text),
  inputTokens: v.optional(tokens),
  outputTokens: v.optional(tokens),
  startedAt: v.optional(time),
  endedAt: v.optional(time),
  durationSeconds: v.optional(amount),
  costUsd: v.optional(amount),
  artifacts: v.optional(v.array(artifact, 'expected an array of strings')),
  errorMessage: v.optional(text),
};

export const eventInputSchema = objectOnly(v.strictObject(eventInputEntries, OBJECT), OBJECT);

const { agentName, sessionId, ticketKey, model, artifacts } = eventInputEntries;
/** What `trackAgent` needs up front; the rest is measured or reported through the tracker. */
export const trackContextSchema = objectOnly(
  v.strictObject({ agentName, sessionId, ticketKey, model, artifacts }, OBJECT),
  OBJECT,
);

export const sessionInputSchema = objectOnly(
  v.strictObject(
    {
      type: v.optional(v.picklist(SESSION_TYPES, oneOf(SESSION_TYPES))),
      sessionId: v.optional(name),
      startedAt: v.optional(time),
    },
    OBJECT,
  ),
  OBJECT,
);

export const endSessionSchema = objectOnly(
  v.strictObject(
    {
      sessionId: name,
      status: v.picklist(SESSION_STATUSES, oneOf(SESSION_STATUSES)),
      endedAt: v.optional(time),
    },
    OBJECT,
  ),
  OBJECT,
);

/** Parses `input` with `schema`, or throws `InvalidInputError` naming every bad field. */
export function parseInput<T extends Schema>(schema: T, input: unknown): v.InferOutput<T> {
  // Without valibot's run when the compiled predicate accepts the fields (see `fieldsOf`):
  // valibot's parse of the event input was ~10 % of the CPU of a recorded event with 64 callers
  // (A/B in the message of the commit that added this). Valibot names what is wrong, in the
  // fields as read once when there is a copy (a getter is not asked twice).
  const predicate = compiledPredicate(schema);
  const fields = predicate === undefined ? undefined : fieldsOf(input);
  if (fields !== undefined && predicate?.(fields)) return fields as v.InferOutput<T>;
  return parseWithValibot(schema, fields ?? input);
}

/** `parseInput` by valibot alone (exported for tests: the answer `parseInput` must give). */
export function parseWithValibot<T extends Schema>(schema: T, input: unknown): v.InferOutput<T> {
  const result = safeParse(schema, input);
  if (!result.success) throw new InvalidInputError(describeIssues(schema, result.issues, [], WORDING));
  return result.output;
}

/**
 * `input`'s fields, each read once, lists read by index as valibot reads them, when it is an
 * object made by `{}` whose keys are all its own enumerable string keys, and not a Proxy; else
 * undefined, and valibot reads `input` itself (inherited or hidden keys, symbols and a Proxy's
 * traps all count there). For a schema compiled in model/schema-predicate.ts (no transforms,
 * defaults or fallbacks), a copy its predicate accepts is what valibot's parse gives, but for the
 * order of its keys. Not covered: a value inside that answers differently each time it is read
 * (a Date whose `valueOf` changes), which valibot reads again when the copy is invalid.
 */
function fieldsOf(input: unknown): Record<string, unknown> | undefined {
  // Not a null prototype either: the copy's keys inherited from Object.prototype would count for `in`.
  if (typeof input !== 'object' || input === null || types.isProxy(input)) return undefined;
  if (Object.getPrototypeOf(input) !== Object.prototype) return undefined;
  const keys = Object.keys(input);
  if (Reflect.ownKeys(input).length !== keys.length) return undefined;
  const copy: Record<string, unknown> = {};
  try {
    for (const key of keys) {
      // A key Object.prototype has (with a setter, read-only): valibot meets it differently.
      if (key in copy) return undefined;
      const value = (input as Record<string, unknown>)[key];
      // A list is read by index, as valibot reads it (a spread would use its iterator).
      copy[key] = Array.isArray(value) ? itemsOf(value) : value;
    }
  } catch {
    // A getter that throws: valibot meets it (or stops before it, at an unknown key) and says so.
    return undefined;
  }
  return copy;
}

function itemsOf(list: readonly unknown[]): unknown[] {
  const items = new Array<unknown>(list.length);
  for (let index = 0; index < list.length; index++) items[index] = list[index];
  return items;
}

/** `Date` or ISO string → ISO 8601 UTC with `Z`. */
export function toIso(time: TimeInput): string {
  return (typeof time === 'string' ? new Date(time) : time).toISOString();
}

/** `time` in milliseconds since the epoch (what `Date.parse(toIso(time))` gives, without the string). */
export function toMs(time: TimeInput): number {
  return typeof time === 'string' ? Date.parse(time) : time.getTime();
}

/**
 * `time` as a timestamp of the file format, or `InvalidInputError` naming `path` when it lies
 * outside years 0001–9999. For times the caller did not give (the clock's "now"), which the
 * input schema has not checked.
 */
export function storableIso(time: Date, path: string): string {
  if (!isStorableTime(time.getTime())) {
    throw new InvalidInputError([
      { path, message: "defaults to the clock's now, which is outside years 0001 to 9999 (UTC)" },
    ]);
  }
  return time.toISOString();
}
