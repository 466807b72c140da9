import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/model/invariants.js';
import { RECENT_EVENTS_KEPT, recordEvent } from '../../src/model/record-event.js';
import { validateState } from '../../src/model/schema.js';
import { endSession, openSessionsOf, startSession } from '../../src/model/sessions.js';
import { applyFifoEviction, createEmptyState } from '../../src/model/state.js';
import {
  type AgentEvent,
  type AgentProfile,
  type DashboardState,
  EVENT_STATUSES,
  SESSION_STATUSES,
  SESSION_TYPES,
} from '../../src/model/types.js';

// Small caps so that most runs evict events and sessions: counters must not notice.
const CAPS = { maxEvents: 5, maxSessions: 3 };
const AGENTS = ['coding', 'github', 'linear'];

// Each artifact with the counters the documented table says it feeds (an independent oracle).
const ARTIFACTS: [string, Record<string, number>][] = [
  ['commit:abc123', { commits_made: 1 }],
  ['pr:#42', { prs_created: 1 }],
  ['pr:#42:merged', { prs_merged: 1 }],
  ['file:src/app.ts', { files_modified: 1 }],
  ['file:src/new.ts:created', { files_created: 1 }],
  ['issue:AI-12', { issues_created: 1 }],
  ['issue:AI-12:completed', { issues_completed: 1 }],
  ['message:slack#dev', { messages_sent: 1 }],
  ['review:pr#41', { reviews_completed: 1 }],
  ['test:app.test.ts', { tests_written: 1 }],
  ['lines:+120/-8', { lines_added: 120, lines_removed: 8 }],
  ['url:https://example.com', {}],
  ['no-prefix', {}],
];

const eventOp = fc.record({
  kind: fc.constant('event' as const),
  agent: fc.constantFrom(...AGENTS),
  // 0..: an open session (modulo), -1: no session, -2: a finished session.
  session: fc.integer({ min: -2, max: 5 }),
  status: fc.constantFrom(...EVENT_STATUSES),
  inputTokens: fc.nat({ max: 100_000 }),
  outputTokens: fc.nat({ max: 20_000 }),
  cost: fc.double({ min: 0, max: 5, noNaN: true }),
  duration: fc.double({ min: 0, max: 600, noNaN: true }),
  artifacts: fc.array(fc.integer({ min: 0, max: ARTIFACTS.length - 1 }), { maxLength: 4 }),
  ticket: fc.constantFrom('', 'AI-1', 'AI-2', 'AI-3'),
  message: fc.constantFrom('', 'boom'),
});
const startOp = fc.record({ kind: fc.constant('start' as const), type: fc.constantFrom(...SESSION_TYPES) });
const endOp = fc.record({
  kind: fc.constant('end' as const),
  pick: fc.nat(),
  status: fc.constantFrom(...SESSION_STATUSES),
});
const ops = fc.array(fc.oneof({ arbitrary: eventOp, weight: 6 }, startOp, endOp), { maxLength: 60 });

interface SessionModel {
  id: string;
  number: number;
  events: AgentEvent[];
  ended: boolean;
}

const stamp = (second: number) => new Date(Date.UTC(2026, 0, 1) + second * 1000).toISOString();

type Op = typeof ops extends fc.Arbitrary<(infer T)[]> ? T : never;

function run(sequence: Op[]) {
  let state: DashboardState = createEmptyState('prop', new Date(Date.UTC(2026, 0, 1)));
  const history: AgentEvent[] = [];
  const sessions: SessionModel[] = [];
  sequence.forEach((op, step) => {
    const open = sessions.filter((s) => !s.ended);
    if (op.kind === 'start') {
      const id = `s${sessions.length}`;
      const started = startSession(state, {
        sessionId: id,
        type: op.type,
        startedAt: stamp(step),
        maxOpenSessions: 1000,
      });
      sessions.push({ id, number: started.session_number, events: [], ended: false });
    } else if (op.kind === 'end') {
      const target = open[op.pick % Math.max(1, open.length)];
      if (!target) return;
      const summary = endSession(state, target.id, op.status, stamp(step));
      expect(summary.session_number).toBe(target.number);
      target.ended = true;
    } else {
      const finished = sessions.filter((s) => s.ended);
      let session: SessionModel | undefined;
      if (op.session >= 0) session = open[op.session % Math.max(1, open.length)];
      else if (op.session === -2) session = finished[0];
      const event: AgentEvent = {
        event_id: `e${step}`,
        agent_name: op.agent,
        session_id: session?.id ?? '',
        ticket_key: op.ticket,
        started_at: stamp(step),
        ended_at: stamp(step + 1),
        duration_seconds: op.duration,
        status: op.status,
        input_tokens: op.inputTokens,
        output_tokens: op.outputTokens,
        total_tokens: op.inputTokens + op.outputTokens,
        estimated_cost_usd: op.cost,
        artifacts: op.artifacts.map((i) => (ARTIFACTS[i] as [string, unknown])[0]),
        error_message: op.status === 'success' ? '' : op.message,
        model_used: 'claude-sonnet-4-5',
      };
      recordEvent(state, event);
      history.push(event);
      if (session && !session.ended) session.events.push(event);
    }
    state = applyFifoEviction(state, CAPS);
  });
  return { state, history, sessions };
}

const sum = (events: AgentEvent[], of: (e: AgentEvent) => number) => events.reduce((t, e) => t + of(e), 0);

function expectProfileMatches(profile: AgentProfile, events: AgentEvent[]): void {
  const successes = events.filter((e) => e.status === 'success').length;
  expect(profile.total_invocations).toBe(events.length);
  expect(profile.successful_invocations).toBe(successes);
  expect(profile.failed_invocations).toBe(events.length - successes);
  expect(profile.total_tokens).toBe(sum(events, (e) => e.total_tokens));
  expect(profile.total_cost_usd).toBeCloseTo(
    sum(events, (e) => e.estimated_cost_usd),
    9,
  );
  expect(profile.total_duration_seconds).toBeCloseTo(
    sum(events, (e) => e.duration_seconds),
    9,
  );

  const counters: Record<string, number> = {};
  for (const e of events) {
    for (const a of e.artifacts) {
      const [, adds] = ARTIFACTS.find(([text]) => text === a) as [string, Record<string, number>];
      for (const [k, v] of Object.entries(adds)) counters[k] = (counters[k] ?? 0) + v;
    }
  }
  for (const k of ['commits_made', 'prs_created', 'prs_merged', 'files_created', 'files_modified']) {
    expect(profile[k], k).toBe(counters[k] ?? 0);
  }
  for (const k of ['lines_added', 'lines_removed', 'tests_written', 'issues_created', 'issues_completed']) {
    expect(profile[k], k).toBe(counters[k] ?? 0);
  }
  expect(profile.messages_sent).toBe(counters.messages_sent ?? 0);
  expect(profile.reviews_completed).toBe(counters.reviews_completed ?? 0);

  // Derived metrics agree with the counters.
  expect(profile.success_rate).toBe(successes / events.length);
  expect(profile.avg_tokens_per_call).toBe(profile.total_tokens / events.length);
  expect(profile.avg_duration_seconds).toBe(profile.total_duration_seconds / events.length);
  expect(profile.cost_per_success_usd).toBe(successes === 0 ? 0 : profile.total_cost_usd / successes);

  // Streaks from the status sequence.
  let run = 0;
  let best = 0;
  for (const e of events) {
    run = e.status === 'success' ? run + 1 : 0;
    best = Math.max(best, run);
  }
  expect(profile.current_streak).toBe(run);
  expect(profile.best_streak).toBe(best);

  expect(profile.recent_events).toEqual(events.slice(-RECENT_EVENTS_KEPT).map((e) => e.event_id));
  const lastFailure = events.filter((e) => e.status !== 'success').at(-1);
  expect(profile.last_error).toBe(lastFailure ? lastFailure.error_message || lastFailure.status : '');
  expect(profile.last_active).toBe(events.at(-1)?.ended_at);
  expect([profile.xp, profile.level, profile.achievements, profile.strengths]).toEqual([0, 1, [], []]);
}

describe('recordEvent / startSession / endSession (property-based)', () => {
  it('keeps every counter equal to the sums over all events recorded, evicted ones included', () => {
    fc.assert(
      fc.property(ops, (sequence) => {
        const { state, history, sessions } = run(sequence);

        expect(state.total_tokens).toBe(sum(history, (e) => e.total_tokens));
        expect(state.total_cost_usd).toBeCloseTo(
          sum(history, (e) => e.estimated_cost_usd),
          9,
        );
        expect(state.total_duration_seconds).toBeCloseTo(
          sum(history, (e) => e.duration_seconds),
          9,
        );
        expect(state.events).toEqual(history.slice(-CAPS.maxEvents));

        const agents = [...new Set(history.map((e) => e.agent_name))].sort();
        expect(Object.keys(state.agents).sort()).toEqual(agents);
        for (const name of agents) {
          expectProfileMatches(
            state.agents[name] as AgentProfile,
            history.filter((e) => e.agent_name === name),
          );
        }

        // Sessions: numbered 1..n in start order; each carries the totals of its own events.
        expect(state.total_sessions).toBe(sessions.length);
        expect(sessions.map((s) => s.number)).toEqual(sessions.map((_, i) => i + 1));
        const kept = [...state.sessions, ...openSessionsOf(state)];
        expect(state.sessions.length).toBe(
          Math.min(CAPS.maxSessions, sessions.filter((s) => s.ended).length),
        );
        for (const record of kept) {
          const model = sessions.find((s) => s.id === record.session_id) as SessionModel;
          expect(record.session_number).toBe(model.number);
          expect(record.total_tokens).toBe(sum(model.events, (e) => e.total_tokens));
          expect(record.total_cost_usd).toBeCloseTo(
            sum(model.events, (e) => e.estimated_cost_usd),
            9,
          );
          expect(record.agents_invoked).toEqual([...new Set(model.events.map((e) => e.agent_name))]);
          const tickets = model.events.map((e) => e.ticket_key).filter((t) => t !== '');
          expect(record.tickets_worked).toEqual([...new Set(tickets)]);
        }

        expect(validateState(state)).toEqual([]);
        expect(checkInvariants(state, CAPS)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});
