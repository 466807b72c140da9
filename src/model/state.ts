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

export const DEFAULT_CAPS: Readonly<Caps> = Object.freeze({ maxEvents: 500, maxSessions: 50 });

/**
 * Extra root key holding the caps a writer with explicit caps last applied:
 * `{ "max_events": 2000, "max_sessions": 50 }`. Writers without explicit caps (a CLI hook, say)
 * follow it instead of cutting the project down to the defaults.
 */
export const RETENTION_KEY = 'retention';

function positiveInt(value: unknown): number | undefined {
  return Number.isSafeInteger(value) && (value as number) > 0 ? (value as number) : undefined;
}

/** The caps to apply to `state`: explicit ones first, then the project's `retention`, then the defaults. */
export function capsFor(state: DashboardState, explicit: Partial<Caps> = {}): Caps {
  const kept = state[RETENTION_KEY] as { max_events?: unknown; max_sessions?: unknown } | undefined;
  return {
    maxEvents: explicit.maxEvents ?? positiveInt(kept?.max_events) ?? DEFAULT_CAPS.maxEvents,
    maxSessions: explicit.maxSessions ?? positiveInt(kept?.max_sessions) ?? DEFAULT_CAPS.maxSessions,
  };
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
