import { type DashboardState, FORMAT_VERSION } from './types.js';

/** Timestamps in the file: ISO 8601, UTC, trailing `Z`. */
export function toTimestamp(date: Date): string {
  return date.toISOString();
}

export function createEmptyState(projectName: string, now: Date = new Date()): DashboardState {
  const stamp = toTimestamp(now);
  return {
    version: FORMAT_VERSION,
    project_name: projectName,
    created_at: stamp,
    updated_at: stamp,
    total_sessions: 0,
    total_tokens: 0,
    total_cost_usd: 0,
    total_duration_seconds: 0,
    agents: {},
    events: [],
    sessions: [],
  };
}

export interface Caps {
  maxEvents: number;
  maxSessions: number;
}

/**
 * Keeps the newest `maxEvents` events and `maxSessions` sessions (arrays are oldest first).
 * Returns a new state object; counters are lifetime sums and are never lowered by eviction.
 */
export function applyFifoEviction(state: DashboardState, caps: Caps): DashboardState {
  const events = state.events.length > caps.maxEvents ? state.events.slice(-caps.maxEvents) : state.events;
  const sessions =
    state.sessions.length > caps.maxSessions ? state.sessions.slice(-caps.maxSessions) : state.sessions;
  if (events === state.events && sessions === state.sessions) return state;
  return { ...state, events, sessions };
}
