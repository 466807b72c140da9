import { z } from 'zod';
import type { ValidationIssue } from '../errors.js';
import { EVENT_STATUSES, SESSION_STATUSES, SESSION_TYPES } from './types.js';

/**
 * Schema of the shared file format (design.md §2). Objects are "loose": unknown keys are allowed
 * and kept, because the Python implementation and future versions may add keys. Validation only
 * reports issues; callers keep their own objects, so key order and extra keys survive untouched.
 */

// ISO 8601 date-time with a UTC `Z` or an explicit offset; the Python side writes microseconds.
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

const timestamp = z
  .string()
  .regex(ISO_TIMESTAMP, 'expected an ISO 8601 timestamp such as 2026-01-31T12:00:00Z');
// Fields that the Python side leaves empty until they are known (an agent that never ran, …).
const optionalTimestamp = z.union([z.literal(''), timestamp], {
  error: 'expected an ISO 8601 timestamp or an empty string',
});
const count = z.int().nonnegative();
const amount = z.number().nonnegative();
// Durations are differences of two clocks: a skewed clock makes them negative, and the Python
// side writes them as they come. Rejecting one would quarantine a whole project for it.
const duration = z.number();
const strings = z.array(z.string());

export const agentEventSchema = z.looseObject({
  event_id: z.string().min(1),
  agent_name: z.string().min(1),
  session_id: z.string(),
  ticket_key: z.string(),
  started_at: timestamp,
  ended_at: optionalTimestamp,
  duration_seconds: duration,
  status: z.enum(EVENT_STATUSES),
  input_tokens: count,
  output_tokens: count,
  total_tokens: count,
  estimated_cost_usd: amount,
  artifacts: strings,
  error_message: z.string(),
  model_used: z.string(),
});

export const agentProfileSchema = z.looseObject({
  agent_name: z.string().min(1),
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
  success_rate: z.number().min(0).max(1),
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
  last_error: z.string(),
  last_active: optionalTimestamp,
});

export const sessionSummarySchema = z.looseObject({
  session_id: z.string().min(1),
  session_number: count,
  session_type: z.enum(SESSION_TYPES),
  started_at: timestamp,
  ended_at: optionalTimestamp,
  status: z.enum(SESSION_STATUSES),
  agents_invoked: strings,
  total_tokens: count,
  total_cost_usd: amount,
  tickets_worked: strings,
});

export const dashboardStateSchema = z.looseObject({
  version: z.int().min(1),
  project_name: z.string(),
  created_at: timestamp,
  updated_at: timestamp,
  total_sessions: count,
  total_tokens: count,
  total_cost_usd: amount,
  total_duration_seconds: duration,
  agents: z.record(z.string(), agentProfileSchema),
  events: z.array(agentEventSchema),
  sessions: z.array(sessionSummarySchema),
});

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

function describe(issue: z.core.$ZodIssue, input: unknown): string {
  // A missing key reads better as "required" than as "expected string, received undefined".
  if (issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined) {
    return `required ${issue.expected} is missing`;
  }
  return issue.message;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/** Runs `schema` over `value`; returns every problem with its path (empty when valid). */
export function collectIssues(schema: z.ZodType, value: unknown, prefix: readonly PropertyKey[] = []) {
  const result = schema.safeParse(value);
  if (result.success) return [];
  return result.error.issues.map(
    (issue): ValidationIssue => ({
      path: formatPath([...prefix, ...issue.path]),
      message: describe(issue, value),
    }),
  );
}

/** Deeper than this, no file was written by us or by Python (whose json module stops near 1,000). */
export const MAX_NESTING = 512;

/** Nesting depth of a JSON value, without recursion (it may be nested 100,000 deep); stops past the limit. */
function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: Array<{ node: unknown; depth: number }> = [{ node: value, depth: 1 }];
  for (let item = stack.pop(); item !== undefined && deepest <= MAX_NESTING; item = stack.pop()) {
    if (typeof item.node !== 'object' || item.node === null) continue;
    deepest = Math.max(deepest, item.depth);
    for (const child of Object.values(item.node)) stack.push({ node: child, depth: item.depth + 1 });
  }
  return deepest;
}

/**
 * Every problem in a whole state, each with its path (`events[3].status`). Empty when valid.
 * The same check decides what `save()` accepts and what `load()` treats as corrupt, so the store
 * never acknowledges a write that its next load would throw away.
 */
export function validateState(value: unknown): ValidationIssue[] {
  // Extra keys may hold anything, but JSON.stringify overflows its stack on very deep values: such
  // a state could never be saved again (found by the torture fuzz).
  if (nestingDepth(value) > MAX_NESTING) {
    return [
      {
        path: '(root)',
        message: `nested deeper than ${MAX_NESTING} levels, so it could never be saved again`,
      },
    ];
  }
  return collectIssues(dashboardStateSchema, value);
}
