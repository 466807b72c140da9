import { InvalidInputError } from '../errors.js';
import { addContributions } from './artifacts.js';
import { addToOpenSession, findOpenSession, type OpenSession } from './sessions.js';
import type { AgentEvent, AgentProfile, DashboardState } from './types.js';
import { appendRecord } from './working-copy.js';

/** `recent_events` of a profile holds the ids of the agent's last this-many events (design.md §2). */
export const RECENT_EVENTS_KEPT = 20;

/** A profile for an agent seen for the first time: zero counters, level 1 (as the Python side). */
export function createProfile(agentName: string): AgentProfile {
  return {
    agent_name: agentName,
    total_invocations: 0,
    successful_invocations: 0,
    failed_invocations: 0,
    total_tokens: 0,
    total_cost_usd: 0,
    total_duration_seconds: 0,
    commits_made: 0,
    prs_created: 0,
    prs_merged: 0,
    files_created: 0,
    files_modified: 0,
    lines_added: 0,
    lines_removed: 0,
    tests_written: 0,
    issues_created: 0,
    issues_completed: 0,
    messages_sent: 0,
    reviews_completed: 0,
    success_rate: 0,
    avg_duration_seconds: 0,
    avg_tokens_per_call: 0,
    cost_per_success_usd: 0,
    xp: 0,
    level: 1,
    current_streak: 0,
    best_streak: 0,
    achievements: [],
    strengths: [],
    weaknesses: [],
    recent_events: [],
    last_error: '',
    last_active: '',
  };
}

/** The derived metrics of a profile: ratios of its lifetime counters. */
export type DerivedMetrics = Pick<
  AgentProfile,
  'success_rate' | 'avg_duration_seconds' | 'avg_tokens_per_call' | 'cost_per_success_usd'
>;

/**
 * The derived metrics from the lifetime counters, as the Python implementation computes them (0
 * where the divisor is 0). The one formula: recording sets them, `checkInvariants` checks them.
 */
export function derivedMetricsOf(profile: AgentProfile): DerivedMetrics {
  const calls = profile.total_invocations;
  const successes = profile.successful_invocations;
  return {
    success_rate: calls === 0 ? 0 : successes / calls,
    avg_duration_seconds: calls === 0 ? 0 : profile.total_duration_seconds / calls,
    avg_tokens_per_call: calls === 0 ? 0 : profile.total_tokens / calls,
    cost_per_success_usd: successes === 0 ? 0 : profile.total_cost_usd / successes,
  };
}

function isLater(candidate: string, current: string): boolean {
  // Compare instants, not strings: the Python side writes microseconds, we write milliseconds.
  // (Not strings even in toISOString's form: a valid-looking `2026-02-30T…` is parsed as March 2,
  // and replaying an operation must keep giving what it gave when it was written.)
  return current === '' || Date.parse(candidate) >= Date.parse(current);
}

/** The agent's profile, created on first use. */
function profileFor(state: DashboardState, agentName: string): AgentProfile {
  if (Object.hasOwn(state.agents, agentName)) return state.agents[agentName] as AgentProfile;
  const profile = createProfile(agentName);
  // defineProperty, not assignment: an agent named `__proto__` must become a key, not a prototype.
  Object.defineProperty(state.agents, agentName, {
    value: profile,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return profile;
}

/**
 * Records one complete, valid event into `state`, in place (the pure core of
 * `AgentMetrics.recordEvent`, run inside one locked update):
 *
 * - appends the event to `events` (the store applies the FIFO cap when it saves);
 * - creates the agent's profile on first use and adds to its lifetime counters: invocations
 *   (`success` counts as successful, `error`, `timeout` and `blocked` as failed), tokens, cost,
 *   duration and the contribution counters of the artifacts (see `ARTIFACT_RULES`);
 * - streaks: a success extends `current_streak` (and `best_streak` when it passes it), any other
 *   status resets it to 0;
 * - `recent_events` keeps the last `RECENT_EVENTS_KEPT` (20) ids; `last_error` is the message of
 *   the latest failed event (its status when the message is empty) and stays until the next
 *   failure; `last_active` is the latest `ended_at` seen;
 * - adds tokens, cost and duration to the root totals, and tokens, cost, agent and ticket to the
 *   event's session when that session is in progress. An event whose session is not in progress
 *   (none given, unknown, already ended, or `sessions_in_progress` unreadable) is still recorded
 *   everywhere else: events may come from hooks that know no session.
 *
 * Throws `InvalidInputError` (naming `total_tokens`), changing nothing, when the event's tokens
 * would push the project's, the agent's or the session's `total_tokens` past
 * `Number.MAX_SAFE_INTEGER` (see `assertTokenTotalsFit`).
 *
 * `xp`, `level`, `achievements`, `strengths` and `weaknesses` are left as they are.
 */
export function recordEvent(state: DashboardState, event: AgentEvent): void {
  const session = findOpenSession(state, event.session_id);
  const known = Object.hasOwn(state.agents, event.agent_name);
  assertTokenTotalsFit(event, {
    project: state.total_tokens + event.total_tokens,
    agent: (known ? (state.agents[event.agent_name] as AgentProfile).total_tokens : 0) + event.total_tokens,
    session: session === undefined ? undefined : session.total_tokens + event.total_tokens,
  });
  addEvent(state, event, session);
}

/** The running token totals recording an event leads to (`session`: when it is in progress). */
export interface TokenTotals {
  project: number;
  agent: number;
  session?: number | undefined;
}

/**
 * Refuses an event whose tokens push a running total past Number.MAX_SAFE_INTEGER, as the input
 * error it is (E_INVALID_INPUT naming the event's `total_tokens`), before anything is written. The
 * state schema rejects such a total (JSON cannot carry it exactly), so the write failed anyway,
 * but as E_INVALID_STATE, which says the store is broken when the event is what is wrong.
 * `totals` are the totals after the event.
 */
export function assertTokenTotalsFit(
  event: Pick<AgentEvent, 'agent_name' | 'session_id' | 'total_tokens'>,
  totals: TokenTotals,
): void {
  const whose = !Number.isSafeInteger(totals.project)
    ? "the project's"
    : !Number.isSafeInteger(totals.agent)
      ? `agent ${event.agent_name}'s`
      : totals.session !== undefined && !Number.isSafeInteger(totals.session)
        ? `session ${event.session_id}'s`
        : undefined;
  if (whose === undefined) return;
  throw new InvalidInputError([
    {
      path: 'total_tokens',
      message: `the event's ${event.total_tokens} tokens would push ${whose} total_tokens past ${Number.MAX_SAFE_INTEGER}, the largest integer the file holds exactly; nothing was recorded`,
    },
  ]);
}

/**
 * `recordEvent` without its check of the token totals, the session in progress already found:
 * replaying a journaled operation must not fail (its writer checked it on the same state).
 */
export function addEvent(state: DashboardState, event: AgentEvent, session: OpenSession | undefined): void {
  appendRecord(state, 'events', event);

  const profile = profileFor(state, event.agent_name);

  const succeeded = event.status === 'success';
  profile.total_invocations += 1;
  if (succeeded) profile.successful_invocations += 1;
  else profile.failed_invocations += 1;
  profile.total_tokens += event.total_tokens;
  profile.total_cost_usd += event.estimated_cost_usd;
  profile.total_duration_seconds += event.duration_seconds;
  addContributions(profile, event.artifacts);

  profile.current_streak = succeeded ? profile.current_streak + 1 : 0;
  profile.best_streak = Math.max(profile.best_streak, profile.current_streak);
  // One new array per event, not two (a spread, then a slice).
  const recent = profile.recent_events.slice(
    Math.max(0, profile.recent_events.length - RECENT_EVENTS_KEPT + 1),
  );
  recent.push(event.event_id);
  profile.recent_events = recent;
  if (!succeeded) profile.last_error = event.error_message === '' ? event.status : event.error_message;
  if (isLater(event.ended_at, profile.last_active)) profile.last_active = event.ended_at;
  Object.assign(profile, derivedMetricsOf(profile));

  state.total_tokens += event.total_tokens;
  state.total_cost_usd += event.estimated_cost_usd;
  state.total_duration_seconds += event.duration_seconds;

  if (session) addToOpenSession(session, event);
}
