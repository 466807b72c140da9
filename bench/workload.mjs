// The benchmark's one workload, "record one event", in plain JavaScript so that every peer store
// performs the same logical change without depending on our code: append one ~450-byte event
// (file format of design.md §2), keep the newest `maxEvents` (FIFO), add to the root totals and
// to one agent profile's lifetime counters.
import { randomUUID } from 'node:crypto';

export const AGENT = 'coding';
export const PROJECT = 'bench';

const ARTIFACTS = ['commit:3f9a2c1d7e', 'file:src/store/lock.ts', 'pr:#128'];

/** The event input our domain API takes (`AgentMetrics.recordEvent`). */
export function eventInput(seq) {
  const ended = new Date(Date.UTC(2026, 0, 1) + seq * 1000);
  return {
    agentName: AGENT,
    status: 'success',
    sessionId: 'session-2026-0042',
    ticketKey: `AI-${1000 + (seq % 9000)}`,
    model: 'claude-sonnet-4-5',
    inputTokens: 12_345,
    outputTokens: 2_345,
    startedAt: new Date(ended.getTime() - 42_500),
    endedAt: ended,
    artifacts: ARTIFACTS,
    errorMessage: '',
  };
}

/** The same event in the file format, as every peer stores it (~450 bytes as compact JSON). */
export function makeEvent(seq) {
  const input = eventInput(seq);
  return {
    event_id: randomUUID(),
    agent_name: input.agentName,
    session_id: input.sessionId,
    ticket_key: input.ticketKey,
    started_at: input.startedAt.toISOString(),
    ended_at: input.endedAt.toISOString(),
    duration_seconds: 42.5,
    status: input.status,
    input_tokens: input.inputTokens,
    output_tokens: input.outputTokens,
    total_tokens: input.inputTokens + input.outputTokens,
    estimated_cost_usd: 0.072_21,
    artifacts: [...input.artifacts],
    error_message: '',
    model_used: input.model,
  };
}

export function emptyState(now = new Date()) {
  const at = now.toISOString();
  return {
    version: 1,
    project_name: PROJECT,
    created_at: at,
    updated_at: at,
    total_sessions: 0,
    total_tokens: 0,
    total_cost_usd: 0,
    total_duration_seconds: 0,
    agents: {},
    events: [],
    sessions: [],
  };
}

function newProfile(name) {
  const profile = { agent_name: name };
  for (const key of [
    'total_invocations',
    'successful_invocations',
    'failed_invocations',
    'total_tokens',
    'total_cost_usd',
    'total_duration_seconds',
    'commits_made',
    'prs_created',
    'prs_merged',
    'files_created',
    'files_modified',
    'lines_added',
    'lines_removed',
    'tests_written',
    'issues_created',
    'issues_completed',
    'messages_sent',
    'reviews_completed',
    'success_rate',
    'avg_duration_seconds',
    'avg_tokens_per_call',
    'cost_per_success_usd',
    'xp',
    'current_streak',
    'best_streak',
  ]) {
    profile[key] = 0;
  }
  return {
    ...profile,
    level: 1,
    achievements: [],
    strengths: [],
    weaknesses: [],
    recent_events: [],
    last_error: '',
    last_active: '',
  };
}

const COUNTER_OF_ARTIFACT = { commit: 'commits_made', file: 'files_modified', pr: 'prs_created' };

/** The mutation, in place: what `recordEvent` does to the state, minus sessions. */
export function applyEvent(state, event, maxEvents) {
  state.events.push(event);
  if (state.events.length > maxEvents) state.events.splice(0, state.events.length - maxEvents);
  const profile = state.agents[event.agent_name] ?? newProfile(event.agent_name);
  state.agents[event.agent_name] = profile;
  const succeeded = event.status === 'success';
  profile.total_invocations += 1;
  if (succeeded) profile.successful_invocations += 1;
  else profile.failed_invocations += 1;
  profile.total_tokens += event.total_tokens;
  profile.total_cost_usd += event.estimated_cost_usd;
  profile.total_duration_seconds += event.duration_seconds;
  for (const artifact of event.artifacts) {
    const counter = COUNTER_OF_ARTIFACT[artifact.split(':')[0]];
    if (counter) profile[counter] += 1;
  }
  profile.current_streak = succeeded ? profile.current_streak + 1 : 0;
  profile.best_streak = Math.max(profile.best_streak, profile.current_streak);
  profile.recent_events = [...profile.recent_events, event.event_id].slice(-20);
  profile.last_active = event.ended_at;
  profile.success_rate = profile.successful_invocations / profile.total_invocations;
  profile.avg_duration_seconds = profile.total_duration_seconds / profile.total_invocations;
  profile.avg_tokens_per_call = profile.total_tokens / profile.total_invocations;
  profile.cost_per_success_usd =
    profile.successful_invocations === 0 ? 0 : profile.total_cost_usd / profile.successful_invocations;
  state.total_tokens += event.total_tokens;
  state.total_cost_usd += event.estimated_cost_usd;
  state.total_duration_seconds += event.duration_seconds;
  state.updated_at = new Date().toISOString();
}

/** A state that already holds `count` events, so a run measures the steady state (FIFO full). */
export function prefilledState(count) {
  const state = emptyState();
  for (let seq = 0; seq < count; seq++) applyEvent(state, makeEvent(seq), count);
  return state;
}

/** Lifetime invocations of the benchmark agent: the counter lost updates are read from. */
export function invocationsOf(state) {
  return state.agents[AGENT]?.total_invocations ?? 0;
}
