import { type AgentProfile, CONTRIBUTION_COUNTERS, type DashboardState } from '../../index.js';

export type RecordKind = 'events' | 'sessions' | 'agents';

/** The records of one kind, as stored (snake_case, file format). Agents by name. */
export function recordsOf(state: DashboardState, what: RecordKind): Record<string, unknown>[] {
  if (what === 'agents') {
    return Object.keys(state.agents)
      .sort()
      .map((name) => state.agents[name] as AgentProfile);
  }
  return state[what];
}

/** CSV columns: the file format's keys in its order (extra keys are left out: no stable header). */
export const COLUMNS: Record<RecordKind, readonly string[]> = {
  events: [
    'event_id',
    'agent_name',
    'session_id',
    'ticket_key',
    'started_at',
    'ended_at',
    'duration_seconds',
    'status',
    'input_tokens',
    'output_tokens',
    'total_tokens',
    'estimated_cost_usd',
    'artifacts',
    'error_message',
    'model_used',
  ],
  sessions: [
    'session_id',
    'session_number',
    'session_type',
    'started_at',
    'ended_at',
    'status',
    'agents_invoked',
    'total_tokens',
    'total_cost_usd',
    'tickets_worked',
  ],
  agents: [
    'agent_name',
    'total_invocations',
    'successful_invocations',
    'failed_invocations',
    'total_tokens',
    'total_cost_usd',
    'total_duration_seconds',
    ...CONTRIBUTION_COUNTERS,
    'success_rate',
    'avg_duration_seconds',
    'avg_tokens_per_call',
    'cost_per_success_usd',
    'xp',
    'level',
    'current_streak',
    'best_streak',
    'achievements',
    'strengths',
    'weaknesses',
    'recent_events',
    'last_error',
    'last_active',
  ],
};
