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
const strings = z.array(z.string());

export const agentEventSchema = z.looseObject({
  event_id: z.string().min(1),
  agent_name: z.string().min(1),
  session_id: z.string(),
  ticket_key: z.string(),
  started_at: timestamp,
  ended_at: optionalTimestamp,
  duration_seconds: amount,
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
  total_duration_seconds: amount,
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
  avg_duration_seconds: amount,
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
  total_duration_seconds: amount,
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

/** Every problem in a whole state, each with its path (`events[3].status`). Empty when valid. */
export function validateState(value: unknown): ValidationIssue[] {
  return collectIssues(dashboardStateSchema, value);
}
