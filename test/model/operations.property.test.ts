import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyChange, type RecordEventOperation, recordEventPatch } from '../../src/model/operations.js';
import { recordEvent } from '../../src/model/record-event.js';
import { endSession, startSession } from '../../src/model/sessions.js';
import { createEmptyState } from '../../src/model/state.js';
import {
  applyPatch,
  diffStates,
  journalForm,
  type StoredState,
  toStored,
} from '../../src/model/state-patch.js';
import { type AgentEvent, type DashboardState, EVENT_STATUSES } from '../../src/model/types.js';
import { workingCopy } from '../../src/model/working-copy.js';

const CAPS = { max_events: 6, max_sessions: 2 };
const stamp = (second: number) => new Date(Date.UTC(2026, 0, 1) + second * 1000).toISOString();

const step = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('event' as const),
      // `__proto__` must stay a key of `agents` on both paths.
      agent: fc.constantFrom('coding', 'github', '__proto__'),
      session: fc.constantFrom('', 's0', 's1', 's2', 'unknown'),
      status: fc.constantFrom(...EVENT_STATUSES),
      tokens: fc.nat({ max: 100_000 }),
      cost: fc.double({ min: 0, max: 5, noNaN: true }),
      duration: fc.double({ min: 0, max: 600, noNaN: true }),
      artifacts: fc.array(fc.constantFrom('commit:a', 'pr:#1', 'lines:+3/-2', 'x:y', 'file:a.ts:created')),
      ticket: fc.constantFrom('', 'AI-1', 'AI-2'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('start' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('end' as const), pick: fc.nat() }) },
);

/** The state after `mutate`, as `MetricsStore.update` computes it: diff, JSON form, patch applied. */
function throughPatch(state: StoredState, mutate: (state: DashboardState) => void): StoredState {
  const working = workingCopy(state);
  mutate(working);
  const caps = { maxEvents: CAPS.max_events, maxSessions: CAPS.max_sessions };
  return applyPatch(state, journalForm(diffStates(state, working, caps)).patch);
}

const view = (state: StoredState) => JSON.parse(JSON.stringify(state));

describe('record_event operations', () => {
  it('lead to the state the same event recorded by a mutator leads to, step after step', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        let byPatch = toStored(createEmptyState('prop', new Date(Date.UTC(2026, 0, 1))));
        let byOperation = byPatch;
        let sessions = 0;
        steps.forEach((next, index) => {
          const at = stamp(index);
          if (next.kind !== 'event') {
            const change = (state: DashboardState) => {
              state.updated_at = at;
              if (next.kind === 'start') {
                startSession(state, {
                  sessionId: `s${sessions}`,
                  type: 'continuation',
                  startedAt: at,
                  maxOpenSessions: 10,
                });
              } else {
                const open = (state.sessions_in_progress ?? []) as Array<{ session_id: string }>;
                const target = open[next.pick % Math.max(1, open.length)];
                if (target) endSession(state, target.session_id, 'complete', at);
              }
            };
            if (next.kind === 'start') sessions++;
            byPatch = throughPatch(byPatch, change);
            byOperation = throughPatch(byOperation, change);
            return;
          }
          const event: AgentEvent = {
            event_id: `e${index}`,
            agent_name: next.agent,
            session_id: next.session,
            ticket_key: next.ticket,
            started_at: at,
            ended_at: stamp(index + 1),
            duration_seconds: next.duration,
            status: next.status,
            input_tokens: next.tokens,
            output_tokens: 0,
            total_tokens: next.tokens,
            estimated_cost_usd: next.cost,
            artifacts: next.artifacts,
            error_message: next.status === 'success' ? '' : 'boom',
            model_used: 'claude-sonnet-4-5',
          };
          byPatch = throughPatch(byPatch, (state) => {
            recordEvent(state, event);
            state.updated_at = at;
          });
          const operation: RecordEventOperation = { op: 'record_event', event, at, caps: CAPS };
          // As the journal gives it back.
          const before = view(byOperation);
          const after = applyChange(byOperation, JSON.parse(JSON.stringify(operation)));
          expect(view(byOperation)).toEqual(before); // states are never changed in place
          byOperation = after;
          expect(view(byOperation)).toEqual(view(byPatch));
        });
      }),
      { numRuns: 200 },
    );
  });

  it('sets the open sessions only when the event adds to one, and the retention key when given', () => {
    let state = toStored(createEmptyState('p', new Date(Date.UTC(2026, 0, 1))));
    state = throughPatch(state, (working) => {
      startSession(working, { sessionId: 's', type: 'initializer', startedAt: stamp(0), maxOpenSessions: 5 });
    });
    const base = { op: 'record_event' as const, at: stamp(1), caps: CAPS };
    const outside = recordEventPatch(state, {
      ...base,
      event: { ...sample(), session_id: 'other' },
    });
    expect(Object.keys(outside.set ?? {})).toEqual([
      'total_tokens',
      'total_cost_usd',
      'total_duration_seconds',
      'updated_at',
    ]);
    const inside = recordEventPatch(state, {
      ...base,
      event: { ...sample(), session_id: 's' },
      retention: CAPS,
    });
    expect(inside.set).toMatchObject({
      sessions_in_progress: [{ session_id: 's', total_tokens: 7 }],
      retention: CAPS,
    });
    // The stored open sessions are not changed in place.
    expect((state.sessions_in_progress as Array<{ total_tokens: number }>)[0]?.total_tokens).toBe(0);
  });
});

function sample(): AgentEvent {
  return {
    event_id: 'e1',
    agent_name: 'coding',
    session_id: '',
    ticket_key: '',
    started_at: stamp(0),
    ended_at: stamp(1),
    duration_seconds: 1,
    status: 'success',
    input_tokens: 7,
    output_tokens: 0,
    total_tokens: 7,
    estimated_cost_usd: 0.1,
    artifacts: [],
    error_message: '',
    model_used: 'claude-sonnet-4-5',
  };
}
