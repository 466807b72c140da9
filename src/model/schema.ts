import * as v from 'valibot';
import type { ValidationIssue } from '../errors.js';
import { isValid } from './schema-predicate.js';
import { EVENT_STATUSES, SESSION_STATUSES, SESSION_TYPES } from './types.js';

/**
 * Schema of the shared file format (design.md §2). Objects are "loose": unknown keys are allowed
 * and kept, because the Python implementation and future versions may add keys. Validation only
 * reports issues; callers keep their own objects, so key order and extra keys survive untouched.
 */

// ISO 8601 date-time with a UTC `Z` or an explicit offset; the Python side writes microseconds.
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

const timestamp = v.pipe(
  v.string(),
  v.regex(ISO_TIMESTAMP, 'expected an ISO 8601 timestamp such as 2026-01-31T12:00:00Z'),
);
// Fields that the Python side leaves empty until they are known (an agent that never ran, …).
const optionalTimestamp = v.union(
  [v.literal(''), timestamp],
  'expected an ISO 8601 timestamp or an empty string',
);
/** A finite number: JSON holds no NaN or Infinity, so a value that came from code cannot be saved. */
export const finiteNumber = v.pipe(
  v.number(),
  v.finite((issue) => `Invalid number: expected a finite number, received ${issue.received}`),
);
/** An integer that a double holds exactly (a larger one would not survive a round trip). */
export const integer = v.pipe(
  v.number(),
  v.safeInteger((issue) => `Invalid number: expected an integer, received ${issue.received}`),
);
const count = v.pipe(integer, v.minValue(0));
const amount = v.pipe(finiteNumber, v.minValue(0));
// Durations are differences of two clocks: a skewed clock makes them negative, and the Python
// side writes them as they come. Rejecting one would quarantine a whole project for it.
const duration = finiteNumber;
const strings = v.array(v.string());
const nonEmpty = v.pipe(v.string(), v.minLength(1));
const isObject = (input: unknown) => typeof input === 'object' && input !== null && !Array.isArray(input);
/**
 * `schema`, an object or record schema, rejecting arrays as a whole: valibot's object and record
 * schemas take an array for an object (`typeof [] === 'object'`), and would accept `[]` for a
 * record or report its "missing keys" instead.
 */
export function objectOnly<const S extends Schema>(schema: S, message?: string) {
  return v.pipe(
    v.custom<v.InferInput<S>>(
      isObject,
      message ?? ((issue) => `Invalid type: Expected Object but received ${issue.received}`),
    ),
    schema,
  );
}
/** A JSON object of the file format: unknown keys are allowed and kept. */
const jsonObject = <const E extends v.ObjectEntries>(entries: E) => objectOnly(v.looseObject(entries));
/** One of `values`: "Invalid option: expected one of "a" | "b", received "c"". */
export const enumOf = <const T extends readonly string[]>(values: T) => {
  const choices = values.map((value) => JSON.stringify(value)).join(' | ');
  return v.picklist(
    values,
    (issue) => `Invalid option: expected one of ${choices}, received ${issue.received}`,
  );
};

export const agentEventSchema = jsonObject({
  event_id: nonEmpty,
  agent_name: nonEmpty,
  session_id: v.string(),
  ticket_key: v.string(),
  started_at: timestamp,
  ended_at: optionalTimestamp,
  duration_seconds: duration,
  status: enumOf(EVENT_STATUSES),
  input_tokens: count,
  output_tokens: count,
  total_tokens: count,
  estimated_cost_usd: amount,
  artifacts: strings,
  error_message: v.string(),
  model_used: v.string(),
});

/** The fields of a profile (a change of a few fields is checked against these alone). */
const agentProfileEntries = {
  agent_name: nonEmpty,
  total_invocations: count,
  successful_invocations: count,
  failed_invocations: count,
  total_tokens: count,
  total_cost_usd: amount,
  total_duration_seconds: duration,
  commits_made: count,
  prs_created: count,
  prs_merged: count,
  files_created: count,
  files_modified: count,
  lines_added: count,
  lines_removed: count,
  tests_written: count,
  issues_created: count,
  issues_completed: count,
  messages_sent: count,
  reviews_completed: count,
  success_rate: v.pipe(finiteNumber, v.minValue(0), v.maxValue(1)),
  avg_duration_seconds: duration,
  avg_tokens_per_call: amount,
  cost_per_success_usd: amount,
  xp: count,
  level: count,
  current_streak: count,
  best_streak: count,
  achievements: strings,
  strengths: strings,
  weaknesses: strings,
  recent_events: strings,
  last_error: v.string(),
  last_active: optionalTimestamp,
} satisfies v.ObjectEntries;

export const agentProfileSchema = jsonObject(agentProfileEntries);

/** The keys of a finished session (sessions in progress lack `ended_at` and `status`). */
export const sessionSummaryEntries = {
  session_id: nonEmpty,
  session_number: count,
  session_type: enumOf(SESSION_TYPES),
  started_at: timestamp,
  ended_at: optionalTimestamp,
  status: enumOf(SESSION_STATUSES),
  agents_invoked: strings,
  total_tokens: count,
  total_cost_usd: amount,
  tickets_worked: strings,
};

export const sessionSummarySchema = jsonObject(sessionSummaryEntries);

export const dashboardStateEntries = {
  version: v.pipe(integer, v.minValue(1)),
  project_name: v.string(),
  created_at: timestamp,
  updated_at: timestamp,
  total_sessions: count,
  total_tokens: count,
  total_cost_usd: amount,
  total_duration_seconds: duration,
  agents: objectOnly(v.record(v.string(), agentProfileSchema)),
  events: v.array(agentEventSchema),
  sessions: v.array(sessionSummarySchema),
};

export const dashboardStateSchema = jsonObject(dashboardStateEntries);

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `['events', 3, 'status']` → `events[3].status`; odd keys are quoted: `agents["my agent"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && IDENTIFIER.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out === '' ? '(root)' : out;
}

/** Any valibot schema (synchronous). */
export type Schema = v.GenericSchema;

/** How `describeIssues` words the two issues that valibot words for developers rather than users. */
export interface IssueWording {
  /**
   * A required value that is absent; `expects` is what its schema expects (`number`, `Array`,
   * `("a" | "b")`), `message` the schema's own message when it has a fixed one.
   */
  missing: (expects: string, message: string | undefined) => string;
  /** A key that a strict object does not know. */
  unknown: string;
}

/** A missing key reads better as "required number is missing" than as "expected number, received undefined". */
export const DEFAULT_WORDING: IssueWording = {
  missing: (expects, message) => {
    if (/^\w+$/.test(expects)) return `required ${expects.toLowerCase()} is missing`;
    return `required field is missing (${message ?? `expected ${expects.replace(/^\((.*)\)$/, '$1')}`})`;
  },
  unknown: 'unknown key',
};

type SchemaNode = {
  entries?: Record<string, SchemaNode>;
  item?: SchemaNode;
  value?: SchemaNode;
  wrapped?: SchemaNode;
  pipe?: readonly SchemaNode[];
  kind?: string;
  expects?: string;
  message?: unknown;
};

/** The schema that checks the value at `path` of `schema` (through optionals, objects, arrays, records). */
function schemaAt(schema: Schema, path: readonly PropertyKey[]): SchemaNode | undefined {
  // Through optionals, and through the pipe of `objectOnly` to its object or record schema.
  const unwrap = (node: SchemaNode | undefined) => {
    let inner = node;
    for (let next = inner; next !== undefined; ) {
      inner = next;
      next = inner.wrapped ?? inner.pipe?.slice(1).findLast((item) => item.kind === 'schema');
    }
    return inner;
  };
  let node = unwrap(schema as SchemaNode);
  for (const key of path) {
    if (node === undefined) return undefined;
    if (node.entries !== undefined) node = node.entries[String(key)];
    else node = node.item ?? node.value;
    node = unwrap(node);
  }
  return node;
}

function missingMessage(wording: IssueWording, entry: SchemaNode | undefined, expected: string | null) {
  const message = typeof entry?.message === 'string' ? entry.message : undefined;
  return wording.missing(entry?.expects ?? expected ?? 'value', message);
}

/**
 * valibot's issues as `ValidationIssue`s, paths prefixed with `prefix`. Its strict objects report
 * only the first unknown key: every unknown key is reported here, as the earlier validator did.
 */
export function describeIssues(
  schema: Schema,
  issues: readonly v.BaseIssue<unknown>[],
  prefix: readonly PropertyKey[] = [],
  wording: IssueWording = DEFAULT_WORDING,
): ValidationIssue[] {
  return issues.flatMap((issue): ValidationIssue[] => {
    const items = issue.path ?? [];
    const path = items.map((item) => item.key as PropertyKey);
    const last = items.at(-1);
    if (last?.origin === 'key' && issue.expected === 'never') {
      const parent = path.slice(0, -1);
      const known = schemaAt(schema, parent)?.entries ?? {};
      return Object.keys(last.input as object)
        .filter((key) => !Object.hasOwn(known, key))
        .map((key) => ({ path: formatPath([...prefix, ...parent, key]), message: wording.unknown }));
    }
    // An absent key, or one holding undefined (which JSON cannot), is a missing value.
    const message =
      issue.kind === 'schema' && issue.input === undefined && path.length > 0
        ? missingMessage(wording, schemaAt(schema, path), issue.expected)
        : issue.message;
    return [{ path: formatPath([...prefix, ...path]), message }];
  });
}

/**
 * `v.safeParse` as every caller uses it: a pipe stops at its first failing check, so that one bad
 * value gets one issue (`-1.5` is not an integer; that it is negative too adds nothing).
 */
export function safeParse<const S extends Schema>(schema: S, value: unknown) {
  return v.safeParse(schema, value, { abortPipeEarly: true });
}

/** Runs `schema` over `value`; returns every problem with its path (empty when valid). */
export function collectIssues(schema: Schema, value: unknown, prefix: readonly PropertyKey[] = []) {
  const result = safeParse(schema, value);
  if (result.success) return [];
  return describeIssues(schema, result.issues, prefix);
}

/** Deeper than this, no file was written by us or by Python (whose json module stops near 1,000). */
export const MAX_NESTING = 512;

/**
 * True when `value` nests objects and arrays more than `limit` levels deep (a primitive is 0 deep,
 * `{}` is 1). Recursive, but never more than `limit` calls deep, so a value nested 100,000 levels
 * is fine; it allocates nothing per value (it runs on every recorded event).
 */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (limit < 1) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (nestedDeeperThan(item, limit - 1)) return true;
    return false;
  }
  for (const key in value) {
    if (Object.hasOwn(value, key) && nestedDeeperThan((value as Record<string, unknown>)[key], limit - 1)) {
      return true;
    }
  }
  return false;
}

/** True when no required key is removed and every value is valid where it goes (`changeLooksValid`). */
function fieldsLookValid(
  entries: Record<string, Schema>,
  values: Record<string, unknown>,
  removed: readonly string[],
  depthLeft: number,
): boolean {
  for (const key of removed) if (Object.hasOwn(entries, key)) return false;
  for (const key of Object.keys(values)) {
    const value = values[key];
    const schema = Object.hasOwn(entries, key) ? entries[key] : undefined;
    if (schema !== undefined && !isValid(schema, value)) return false;
    if (nestedDeeperThan(value, depthLeft)) return false;
  }
  return true;
}

/**
 * True when every value a change sets is valid where it goes (`v.is`: no issue is collected, and
 * it stops at the first problem), so that the common valid change costs a few small checks. It
 * says nothing about what is wrong: on false, `validateState` of the changed part says that, in
 * the same words as always.
 */
export function changeLooksValid(change: {
  root: Record<string, unknown>;
  removed: readonly string[];
  profiles: readonly unknown[];
  /** Profiles changed field by field (the rest of each profile was checked when written). */
  profileFields: ReadonlyArray<{ values: Record<string, unknown>; removed: readonly string[] }>;
  events: readonly unknown[];
  sessions: readonly unknown[];
}): boolean {
  // A root value sits one level below the state, a profile's value three.
  if (!fieldsLookValid(dashboardStateEntries, change.root, change.removed, MAX_NESTING - 1)) return false;
  for (const { values, removed } of change.profileFields) {
    if (!fieldsLookValid(agentProfileEntries, values, removed, MAX_NESTING - 3)) return false;
  }
  const all = (schema: Schema, records: readonly unknown[]) =>
    // A profile or record sits two levels below the state (in `agents`, `events`, `sessions`).
    records.every((record) => isValid(schema, record) && !nestedDeeperThan(record, MAX_NESTING - 2));
  return (
    all(agentProfileSchema, change.profiles) &&
    all(agentEventSchema, change.events) &&
    all(sessionSummarySchema, change.sessions)
  );
}

/**
 * Agent names that valibot's `record` leaves unchecked (it skips these keys, against prototype
 * pollution), so `validateState` accepts anything under them.
 */
const NAMES_RECORD_SKIPS = ['__proto__', 'prototype', 'constructor'];

/**
 * The problems of the profiles under the agent names `validateState` does not check (see above).
 * Writes check them (`save()`, `update()`, the memory backend), and so does `checkInvariants`:
 * unchecked, an `update()` that put `null` there was written, and each later event of that agent
 * failed inside recording (E_INTERNAL). Loads do not, as before: a file an earlier version wrote
 * with such a profile is not thrown away whole for it (`verify` names it; a `save()` of it is
 * refused until the profile is fixed or deleted).
 */
export function uncheckedProfileIssues(state: unknown): ValidationIssue[] {
  const agents = isObject(state) ? (state as { agents?: unknown }).agents : undefined;
  if (typeof agents !== 'object' || agents === null) return [];
  const issues: ValidationIssue[] = [];
  for (const name of NAMES_RECORD_SKIPS) {
    if (!Object.hasOwn(agents, name)) continue;
    // An own property (even `__proto__`, and a working copy's lazy profile) is read as one.
    const profile = (agents as Record<string, unknown>)[name];
    issues.push(...collectIssues(agentProfileSchema, profile, ['agents', name]));
  }
  return issues;
}

/**
 * Every problem in a whole state, each with its path (`events[3].status`). Empty when valid.
 * The same check decides what `save()` accepts and what `load()` treats as corrupt, so the store
 * never acknowledges a write that its next load would throw away.
 */
export function validateState(value: unknown): ValidationIssue[] {
  // Extra keys may hold anything, but JSON.stringify overflows its stack on very deep values: such
  // a state could never be saved again (found by the torture fuzz).
  if (nestedDeeperThan(value, MAX_NESTING)) {
    return [
      {
        path: '(root)',
        message: `nested deeper than ${MAX_NESTING} levels, so it could never be saved again`,
      },
    ];
  }
  if (!isObject(value)) return collectIssues(dashboardStateSchema, value);
  // The histories are checked one record at a time: valibot builds an output copy of what it
  // checks, and a copy of 50,000 events at once (~100 MB) was the peak of a process's memory.
  const { events, sessions } = value as { events?: unknown; sessions?: unknown };
  const root = {
    ...(value as object),
    events: Array.isArray(events) ? [] : events,
    sessions: Array.isArray(sessions) ? [] : sessions,
  };
  const issues = collectIssues(dashboardStateSchema, root);
  const records: Array<[string, Schema, unknown]> = [
    ['events', agentEventSchema, events],
    ['sessions', sessionSummarySchema, sessions],
  ];
  for (const [key, schema, list] of records) {
    if (!Array.isArray(list)) continue;
    for (let index = 0; index < list.length; index++) {
      // The predicate allocates nothing; valibot's copy of each record, made only to word what is
      // wrong, was garbage enough to raise a load's peak RSS by 27 MB at 50,000 events.
      if (isValid(schema, list[index])) continue;
      issues.push(...collectIssues(schema, list[index], [key, index]));
    }
  }
  return issues;
}
