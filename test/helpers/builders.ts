import { createProfile } from '../../src/model/record-event.js';
import { createEmptyState } from '../../src/model/state.js';
import type { AgentEvent, AgentProfile, DashboardState, SessionSummary } from '../../src/model/types.js';

export function makeEvent(overrides: Partial<AgentEvent> = {}): AgentEvent {
  return {
    event_id: 'evt-1',
    agent_name: 'coding',
    session_id: 'sess-1',
    ticket_key: 'AI-1',
    started_at: '2026-01-01T10:00:00.000Z',
    ended_at: '2026-01-01T10:00:30.000Z',
    duration_seconds: 30,
    status: 'success',
    input_tokens: 1000,
    output_tokens: 200,
    total_tokens: 1200,
    estimated_cost_usd: 0.006,
    artifacts: ['commit:abc123'],
    error_message: '',
    model_used: 'claude-sonnet-4-5',
    ...overrides,
  };
}

export function makeSession(overrides: Partial<SessionSummary> = {}): SessionSummary {
  return {
    session_id: 'sess-1',
    session_number: 1,
    session_type: 'initializer',
    started_at: '2026-01-01T10:00:00.000Z',
    ended_at: '2026-01-01T11:00:00.000Z',
    status: 'complete',
    agents_invoked: ['coding'],
    total_tokens: 1200,
    total_cost_usd: 0.006,
    tickets_worked: ['AI-1'],
    ...overrides,
  };
}

export function makeProfile(overrides: Partial<AgentProfile> = {}): AgentProfile {
  // One recorded success of makeEvent(): the counters it leaves, on top of a new profile.
  return {
    ...createProfile('coding'),
    total_invocations: 1,
    successful_invocations: 1,
    total_tokens: 1200,
    total_cost_usd: 0.006,
    total_duration_seconds: 30,
    commits_made: 1,
    success_rate: 1,
    avg_duration_seconds: 30,
    avg_tokens_per_call: 1200,
    cost_per_success_usd: 0.006,
    current_streak: 1,
    best_streak: 1,
    recent_events: ['evt-1'],
    last_active: '2026-01-01T10:00:30.000Z',
    ...overrides,
  };
}

/** A valid state with `events` events (ids evt-0…), one agent and `sessions` sessions. */
export function makeState(events = 3, sessions = 1, projectName = 'test-project'): DashboardState {
  const state = createEmptyState(projectName, new Date('2026-01-01T09:00:00.000Z'));
  state.events = Array.from({ length: events }, (_, i) => makeEvent({ event_id: `evt-${i}` }));
  state.sessions = Array.from({ length: sessions }, (_, i) =>
    makeSession({ session_id: `sess-${i}`, session_number: i + 1 }),
  );
  state.agents = { coding: makeProfile() };
  return state;
}

/**
 * A mutator that records event `${prefix}${n}` and counts one more session: the tests' usual
 * update, whose effect on the state (event ids, `total_sessions`) is easy to check.
 */
export function bump(n: number, prefix = 'e') {
  return (state: DashboardState) => {
    state.events.push(makeEvent({ event_id: `${prefix}${n}` }));
    state.total_sessions += 1;
  };
}
