/**
 * The persisted file format (design.md §2), shared with the Python implementation. Keys are
 * snake_case on purpose: these objects are written to `.agent_metrics.json` as they are.
 * Extra keys are allowed everywhere and survive a load/save round trip.
 */

export const EVENT_STATUSES = ['success', 'error', 'timeout', 'blocked'] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

export const SESSION_TYPES = ['initializer', 'continuation'] as const;
export type SessionType = (typeof SESSION_TYPES)[number];

export const SESSION_STATUSES = ['continue', 'error', 'complete'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** One agent invocation. */
export interface AgentEvent {
  event_id: string;
  agent_name: string;
  session_id: string;
  ticket_key: string;
  started_at: string;
  ended_at: string;
  duration_seconds: number;
  status: EventStatus;
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  estimated_cost_usd: number;
  artifacts: string[];
  error_message: string;
  model_used: string;
  [extra: string]: unknown;
}

/** Lifetime counters of one agent. */
export interface AgentProfile {
  agent_name: string;
  total_invocations: number;
  successful_invocations: number;
  failed_invocations: number;
  total_tokens: number;
  total_cost_usd: number;
  total_duration_seconds: number;
  commits_made: number;
  prs_created: number;
  prs_merged: number;
  files_created: number;
  files_modified: number;
  lines_added: number;
  lines_removed: number;
  tests_written: number;
  issues_created: number;
  issues_completed: number;
  messages_sent: number;
  reviews_completed: number;
  success_rate: number;
  avg_duration_seconds: number;
  avg_tokens_per_call: number;
  cost_per_success_usd: number;
  xp: number;
  level: number;
  current_streak: number;
  best_streak: number;
  achievements: string[];
  strengths: string[];
  weaknesses: string[];
  recent_events: string[];
  last_error: string;
  last_active: string;
  [extra: string]: unknown;
}

/** One finished session. */
export interface SessionSummary {
  session_id: string;
  session_number: number;
  session_type: SessionType;
  started_at: string;
  ended_at: string;
  status: SessionStatus;
  agents_invoked: string[];
  total_tokens: number;
  total_cost_usd: number;
  tickets_worked: string[];
  [extra: string]: unknown;
}

/** The whole file: the 11 required root keys, plus any extra keys (kept as they are). */
export interface DashboardState {
  version: number;
  project_name: string;
  created_at: string;
  updated_at: string;
  total_sessions: number;
  total_tokens: number;
  total_cost_usd: number;
  total_duration_seconds: number;
  agents: Record<string, AgentProfile>;
  events: AgentEvent[];
  sessions: SessionSummary[];
  [extra: string]: unknown;
}

export const FORMAT_VERSION = 1;
