import type { AgentEvent, DashboardState } from '../../src/model/types.js';

/**
 * The update sequence the torture workers apply (test/workers/torture-crash-child.mjs has the same
 * step in plain JS): update n sets total_sessions = n, adds n to total_tokens and appends event
 * `t-<n>`. A state is "a prefix of the issued updates" exactly when it matches the first n steps.
 */
export function applyStep(state: DashboardState): void {
  const n = state.total_sessions + 1;
  state.total_sessions = n;
  state.total_tokens += n;
  state.events.push(sequenceEvent(n));
}

/**
 * Event n of the sequence (n tokens, id `t-<n>`): what update n appends, and what the workers'
 * `operations` mode records with `recordEvent` (then the agent's invocations count the updates).
 */
export function sequenceEvent(n: number): AgentEvent {
  const now = new Date().toISOString();
  return {
    event_id: `t-${n}`,
    agent_name: 'torture',
    session_id: 'in-process',
    ticket_key: '',
    started_at: now,
    ended_at: now,
    duration_seconds: 0,
    status: 'success',
    input_tokens: n,
    output_tokens: 0,
    total_tokens: n,
    estimated_cost_usd: 0,
    artifacts: [],
    error_message: '',
    model_used: 'none',
  };
}

/** How many updates of the sequence `state` holds: `total_sessions`, or with operations the events recorded. */
export function updatesIn(state: DashboardState, operations = false): number {
  return operations ? (state.agents.torture?.total_invocations ?? 0) : state.total_sessions;
}

/** Undefined when `state` is the result of updates 1…n (n = `updatesIn`); else what is wrong. */
export function prefixProblem(
  state: DashboardState,
  maxEvents: number,
  operations = false,
): string | undefined {
  const n = updatesIn(state, operations);
  if (state.total_tokens !== (n * (n + 1)) / 2) {
    return `total_tokens ${state.total_tokens} is not the sum of updates 1…${n}`;
  }
  const expected = Array.from(
    { length: Math.min(n, maxEvents) },
    (_, i) => `t-${n - Math.min(n, maxEvents) + 1 + i}`,
  );
  const actual = state.events.map((event) => event.event_id);
  if (actual.join(',') !== expected.join(',')) {
    return `events ${actual.join(',')} are not the last of updates 1…${n}`;
  }
  return undefined;
}
