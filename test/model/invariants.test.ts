import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/model/invariants.js';
import { createEmptyState } from '../../src/model/state.js';
import type { AgentEvent, AgentProfile, DashboardState } from '../../src/model/types.js';
import { makeEvent, makeProfile, makeSession, makeState } from '../helpers/builders.js';

const fixture = (name: string): DashboardState =>
  JSON.parse(readFileSync(new URL(`../fixtures/python-written/${name}`, import.meta.url), 'utf8'));

/** A consistent state holding `events`, built by summing them the way the formats defines. */
function stateOf(events: AgentEvent[]): DashboardState {
  const state = createEmptyState('p', new Date('2026-01-01T00:00:00Z'));
  state.events = events;
  // No prototype: an agent named `__proto__` must be a plain key here.
  state.agents = Object.create(null);
  for (const event of events) {
    state.agents[event.agent_name] ??= makeProfile({
      agent_name: event.agent_name,
      total_invocations: 0,
      successful_invocations: 0,
      total_tokens: 0,
      total_cost_usd: 0,
      total_duration_seconds: 0,
      current_streak: 0,
      best_streak: 0,
      recent_events: [],
    });
    const profile = state.agents[event.agent_name] as AgentProfile;
    profile.total_invocations += 1;
    if (event.status === 'success') profile.successful_invocations += 1;
    else profile.failed_invocations += 1;
    profile.total_tokens += event.total_tokens;
    profile.total_cost_usd += event.estimated_cost_usd;
    profile.total_duration_seconds += event.duration_seconds;
    profile.success_rate = profile.successful_invocations / profile.total_invocations;
    profile.avg_duration_seconds = profile.total_duration_seconds / profile.total_invocations;
    profile.avg_tokens_per_call = profile.total_tokens / profile.total_invocations;
    profile.cost_per_success_usd =
      profile.successful_invocations === 0 ? 0 : profile.total_cost_usd / profile.successful_invocations;
    state.total_tokens += event.total_tokens;
    state.total_cost_usd += event.estimated_cost_usd;
    state.total_duration_seconds += event.duration_seconds;
  }
  return state;
}

const twoEvents = () =>
  stateOf([
    makeEvent({ event_id: 'a', agent_name: 'coding' }),
    makeEvent({ event_id: 'b', agent_name: 'github', status: 'error', estimated_cost_usd: 0.1 }),
  ]);

const paths = (state: DashboardState, options = {}) => checkInvariants(state, options).map((i) => i.path);

describe('checkInvariants', () => {
  it('finds nothing wrong in both files written by the Python implementation', () => {
    expect(checkInvariants(fixture('.agent_metrics.json'))).toEqual([]);
    expect(checkInvariants(fixture('.agent_metrics.json.bak'))).toEqual([]);
    expect(checkInvariants(createEmptyState('p'))).toEqual([]);
  });

  it('finds nothing wrong in any state built by summing its events (property)', () => {
    const event = fc.record({
      agent: fc.constantFrom('coding', 'github', '__proto__', 'my agent'),
      status: fc.constantFrom('success', 'error', 'timeout', 'blocked' as const),
      input: fc.nat(100_000),
      output: fc.nat(100_000),
      cost: fc.double({ min: 0, max: 5, noNaN: true }),
      duration: fc.double({ min: 0, max: 600, noNaN: true }),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), (specs) => {
        const events = specs.map((spec, index) =>
          makeEvent({
            event_id: `e${index}`,
            agent_name: spec.agent,
            status: spec.status,
            input_tokens: spec.input,
            output_tokens: spec.output,
            total_tokens: spec.input + spec.output,
            estimated_cost_usd: spec.cost,
            duration_seconds: spec.duration,
          }),
        );
        expect(checkInvariants(stateOf(events))).toEqual([]);
      }),
    );
  });

  it('reports caps exceeded, with the cap in the message', () => {
    const state = twoEvents();
    state.sessions = [makeSession({ session_id: 's1', session_number: 1, total_tokens: 0 })];
    state.total_sessions = 1;
    const issues = checkInvariants(state, { maxEvents: 1, maxSessions: 0 });
    expect(issues.map((i) => i.path)).toEqual(['events', 'sessions']);
    expect(issues[0]?.message).toBe('holds 2 events, more than the cap of 1');
  });

  it('reports duplicate event ids, bad token sums, reversed times and events without a profile', () => {
    const state = twoEvents();
    state.events.push(makeEvent({ event_id: 'a', agent_name: 'coding', total_tokens: 7 }));
    (state.events[1] as AgentEvent).ended_at = '2025-12-31T00:00:00Z';
    (state.events[0] as AgentEvent).agent_name = 'ghost';
    const issues = checkInvariants(state);
    expect(issues).toContainEqual({
      path: 'events[2].event_id',
      message: 'duplicate of events[0].event_id ("a")',
    });
    expect(issues).toContainEqual({
      path: 'events[2].total_tokens',
      message: 'expected input_tokens + output_tokens = 1200, found 7',
    });
    expect(issues).toContainEqual({ path: 'events[1].ended_at', message: 'is earlier than started_at' });
    expect(issues).toContainEqual({
      path: 'events[0].agent_name',
      message: 'no profile for "ghost" in agents',
    });
  });

  it('reports duplicate session ids and numbers, reversed times, and a total below the sessions', () => {
    const state = twoEvents();
    state.sessions = [
      makeSession({ session_id: 's1', session_number: 1, total_tokens: 0 }),
      makeSession({ session_id: 's1', session_number: 1, total_tokens: 0, ended_at: '2020-01-01T00:00:00Z' }),
    ];
    state.total_sessions = 1;
    expect(paths(state)).toEqual([
      'sessions[1].session_id',
      'sessions[1].session_number',
      'sessions[1].ended_at',
      'total_sessions',
    ]);
    state.sessions = [makeSession({ session_id: 's9', session_number: 9, total_tokens: 0 })];
    expect(checkInvariants(state)).toEqual([
      { path: 'total_sessions', message: 'is 1, less than the highest session_number (9)' },
    ]);
  });

  it('counts sessions in progress: numbers and ids unique across both lists, and in total_sessions', () => {
    const state = twoEvents();
    state.sessions = [makeSession({ session_id: 's1', session_number: 1, total_tokens: 0 })];
    state.total_sessions = 2;
    const {
      ended_at: _,
      status: __,
      ...open
    } = makeSession({ session_id: 's2', session_number: 2, total_tokens: 0 });
    state.sessions_in_progress = [open];
    expect(checkInvariants(state)).toEqual([]);
    state.sessions_in_progress = [
      { ...open, session_number: 1 },
      { ...open, session_id: 's1', session_number: 3 },
      'junk',
    ];
    expect(checkInvariants(state)).toEqual([
      { path: 'sessions_in_progress[1].session_id', message: 'duplicate of sessions[0].session_id ("s1")' },
      {
        path: 'sessions_in_progress[0].session_number',
        message: 'duplicate of sessions[0].session_number (1)',
      },
      { path: 'total_sessions', message: 'is 2, fewer than the 3 sessions kept (finished and in progress)' },
    ]);
  });

  it('checks the derived metrics against the counters (numbers worked out by hand)', () => {
    const state = twoEvents();
    const coding = state.agents.coding as AgentProfile;
    // 4 calls, 3 successes, 10 s, 2000 tokens, $0.9 in all.
    Object.assign(coding, {
      total_invocations: 4,
      successful_invocations: 3,
      failed_invocations: 1,
      total_duration_seconds: 10,
      total_tokens: 2000,
      total_cost_usd: 0.9,
    });
    state.total_tokens = 2000 + (state.agents.github as AgentProfile).total_tokens;
    state.total_cost_usd = 0.9 + (state.agents.github as AgentProfile).total_cost_usd;
    state.total_duration_seconds = 10 + (state.agents.github as AgentProfile).total_duration_seconds;
    Object.assign(coding, {
      success_rate: 0.75,
      avg_duration_seconds: 2.5,
      avg_tokens_per_call: 500,
      cost_per_success_usd: 0.3,
    });
    expect(checkInvariants(state)).toEqual([]);
    Object.assign(coding, { success_rate: 3 / 3, avg_tokens_per_call: 2000 / 3 });
    expect(checkInvariants(state)).toEqual([
      { path: 'agents.coding.success_rate', message: 'expected 0.75 from the counters, found 1' },
      {
        path: 'agents.coding.avg_tokens_per_call',
        message: `expected 500 from the counters, found ${2000 / 3}`,
      },
    ]);
  });

  it('reports profile counters that disagree with each other, under the agent path', () => {
    const state = twoEvents();
    const coding = state.agents.coding as DashboardState['agents'][string];
    coding.agent_name = 'other';
    coding.failed_invocations = 5;
    coding.success_rate = 0.5;
    coding.current_streak = 3;
    coding.recent_events = Array.from({ length: 21 }, (_, i) => `e${i}`);
    expect(paths(state)).toEqual([
      'agents.coding.agent_name',
      'agents.coding.total_invocations',
      'agents.coding.success_rate',
      'agents.coding.best_streak',
      'agents.coding.recent_events',
    ]);
  });

  it('reports lifetime counters below what the kept events add up to', () => {
    const state = twoEvents();
    state.events.push(makeEvent({ event_id: 'c', agent_name: 'github' }));
    expect(paths(state)).toEqual(['agents.github.total_invocations', 'agents.github.total_tokens']);
    const github = state.agents.github as DashboardState['agents'][string];
    const kept = state.events.filter((event) => event.agent_name === 'github');
    const tokens = kept.reduce((total, event) => total + event.total_tokens, 0);
    expect(checkInvariants(state).map((issue) => issue.message)).toEqual([
      `is ${github.total_invocations}, fewer than the ${kept.length} events kept for this agent`,
      `is ${github.total_tokens}, less than the ${tokens} tokens of the events kept for this agent`,
    ]);
  });

  it('reports root totals that are not the sums over the agents, and sessions above them', () => {
    const state = twoEvents();
    state.total_tokens += 1;
    state.total_cost_usd += 0.01;
    state.total_duration_seconds = 0;
    expect(paths(state)).toEqual(['total_tokens', 'total_cost_usd', 'total_duration_seconds']);
    const sessions = twoEvents();
    sessions.sessions = [makeSession({ session_id: 's1', session_number: 1, total_tokens: 10 ** 6 })];
    sessions.total_sessions = 1;
    expect(checkInvariants(sessions)).toEqual([
      { path: 'total_tokens', message: 'is 2400, less than the 1000000 tokens of the sessions kept' },
    ]);
  });

  it('quotes agent names that are not identifiers in paths', () => {
    const state = stateOf([makeEvent({ agent_name: 'my agent' })]);
    (state.agents['my agent'] as DashboardState['agents'][string]).best_streak = 0;
    (state.agents['my agent'] as DashboardState['agents'][string]).current_streak = 1;
    expect(paths(state)).toEqual(['agents["my agent"].best_streak']);
  });
});

describe('checkInvariants caps', () => {
  it("uses the caps the state's retention records when none are given", () => {
    const state = makeState(600, 0);
    state.events = state.events.map((event, i) => ({ ...event, event_id: `e${i}` }));
    const capPaths = (s: typeof state) =>
      checkInvariants(s)
        .map((issue) => issue.path)
        .filter((path) => path === 'events');
    expect(capPaths(state)).toEqual(['events']); // default cap 500
    state.retention = { max_events: 800, max_sessions: 50 };
    expect(capPaths(state)).toEqual([]);
  });
});

describe('checkInvariants at scale', () => {
  it('checks 200,000 kept sessions (a spread of their numbers overflowed the stack)', () => {
    const state = makeState(0, 0);
    state.sessions = Array.from({ length: 200_000 }, (_, i) =>
      makeSession({ session_id: `s${i}`, session_number: i + 1 }),
    );
    state.total_sessions = 199_999;
    const issues = checkInvariants(state, { maxEvents: 500, maxSessions: 200_000 });
    expect(issues).toContainEqual({
      path: 'total_sessions',
      message: 'is 199999, fewer than the 200000 sessions kept (finished and in progress)',
    });
  });
});
