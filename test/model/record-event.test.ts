import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors.js';
import { createProfile, derivedMetricsOf, recordEvent } from '../../src/model/record-event.js';
import { openSessionsOf, startSession } from '../../src/model/sessions.js';
import { createEmptyState } from '../../src/model/state.js';
import { makeEvent, makeProfile } from '../helpers/builders.js';

const AT = '2026-01-01T10:00:00.000Z';

describe('recordEvent', () => {
  it('keeps xp, level, achievements, strengths and weaknesses as the file holds them', () => {
    const state = createEmptyState('p');
    state.agents.coding = makeProfile({
      xp: 120,
      level: 3,
      achievements: ['first-commit'],
      strengths: ['tests'],
      weaknesses: ['timeouts'],
      custom_python_key: 'kept',
    });
    recordEvent(state, makeEvent({ event_id: 'new', status: 'error', error_message: '' }));
    expect(state.agents.coding).toMatchObject({
      xp: 120,
      level: 3,
      achievements: ['first-commit'],
      strengths: ['tests'],
      weaknesses: ['timeouts'],
      custom_python_key: 'kept',
      total_invocations: 2,
      failed_invocations: 1,
      current_streak: 0,
      best_streak: 1,
      last_error: 'error',
    });
  });

  it('does not move last_active back for an event that ended earlier (Python microsecond stamps)', () => {
    const state = createEmptyState('p');
    state.agents.coding = makeProfile({ last_active: '2026-02-15T10:02:44.500000Z' });
    recordEvent(state, makeEvent({ event_id: 'a', ended_at: '2026-02-15T10:02:44.400Z' }));
    expect(state.agents.coding?.last_active).toBe('2026-02-15T10:02:44.500000Z');
    recordEvent(state, makeEvent({ event_id: 'b', ended_at: '2026-02-15T10:02:44.600Z' }));
    expect(state.agents.coding?.last_active).toBe('2026-02-15T10:02:44.600Z');
  });

  it('moves last_active to the later instant whatever form each time is written in', () => {
    // Instants, whatever the strings: toISOString's form, Python's microseconds, an offset.
    const forms = [
      (ms: number) => new Date(ms).toISOString(),
      (ms: number) => new Date(ms).toISOString().replace('Z', '123Z'), // Python: microseconds
      (ms: number) => {
        const shifted = new Date(ms + 2 * 3600_000).toISOString();
        return `${shifted.slice(0, 23)}+02:00`;
      },
    ];
    // Date.UTC maps years 0–99 to 19xx: the first day is spelled out.
    const instant = fc.integer({ min: Date.parse('0001-01-02T00:00:00.000Z'), max: Date.UTC(9999, 11, 30) });
    const form = fc.integer({ min: 0, max: forms.length - 1 });
    fc.assert(
      fc.property(instant, form, instant, form, (active, activeForm, ended, endedForm) => {
        const state = createEmptyState('p');
        const before = (forms[activeForm] as (ms: number) => string)(active);
        const after = (forms[endedForm] as (ms: number) => string)(ended);
        state.agents.coding = makeProfile({ last_active: before });
        recordEvent(state, makeEvent({ event_id: 'e', ended_at: after }));
        expect(state.agents.coding?.last_active).toBe(ended >= active ? after : before);
      }),
      { numRuns: 500 },
    );
  });

  it('stores an agent named __proto__ as a key, not as a prototype', () => {
    const state = createEmptyState('p');
    recordEvent(state, makeEvent({ agent_name: '__proto__' }));
    expect(Object.keys(state.agents)).toEqual(['__proto__']);
    const written = JSON.parse(JSON.stringify(state)).agents;
    expect(Object.getOwnPropertyDescriptor(written, '__proto__')?.value.total_invocations).toBe(1);
  });

  it('records the event when sessions_in_progress is malformed, leaving that key alone', () => {
    const state = createEmptyState('p');
    state.sessions_in_progress = { broken: true };
    recordEvent(state, makeEvent({ session_id: 'sess-1' }));
    expect(state.events).toHaveLength(1);
    expect(state.total_tokens).toBe(1200);
    expect(state.sessions_in_progress).toEqual({ broken: true });
  });

  it('adds to the running totals of the event session only', () => {
    const state = createEmptyState('p');
    startSession(state, { sessionId: 'a', type: 'initializer', startedAt: AT, maxOpenSessions: 10 });
    startSession(state, { sessionId: 'b', type: 'initializer', startedAt: AT, maxOpenSessions: 10 });
    recordEvent(state, makeEvent({ session_id: 'b', ticket_key: '' }));
    recordEvent(state, makeEvent({ event_id: 'e2', session_id: '' }));
    expect(openSessionsOf(state).map((s) => [s.session_id, s.total_tokens, s.tickets_worked])).toEqual([
      ['a', 0, []],
      ['b', 1200, []],
    ]);
  });

  it('refuses, changing nothing, an event that would push a token total past the largest exact integer', () => {
    const state = createEmptyState('p');
    startSession(state, { sessionId: 's', type: 'initializer', startedAt: AT, maxOpenSessions: 10 });
    state.agents.coding = makeProfile({ total_tokens: 100 });
    const brink = (set: (tokens: number) => void, whose: string) => {
      set(Number.MAX_SAFE_INTEGER - 1000);
      const before = structuredClone(state);
      expect(() =>
        recordEvent(state, makeEvent({ event_id: 'big', session_id: 's', total_tokens: 1200 })),
      ).toThrow(InvalidInputError);
      try {
        recordEvent(state, makeEvent({ event_id: 'big', session_id: 's', total_tokens: 1200 }));
      } catch (error) {
        expect((error as InvalidInputError).issues).toEqual([
          {
            path: 'total_tokens',
            message: `the event's 1200 tokens would push ${whose} total_tokens past 9007199254740991, the largest integer the file holds exactly; nothing was recorded`,
          },
        ]);
      }
      expect(state).toEqual(before);
      set(0);
    };
    const session = () => openSessionsOf(state)[0] as { total_tokens: number };
    brink((tokens) => (state.total_tokens = tokens), "the project's");
    brink(
      (tokens) => ((state.agents.coding as { total_tokens: number }).total_tokens = tokens),
      "agent coding's",
    );
    brink((tokens) => (session().total_tokens = tokens), "session s's");
    // Up to the limit itself is fine.
    state.total_tokens = Number.MAX_SAFE_INTEGER - 1200;
    recordEvent(state, makeEvent({ event_id: 'fits', session_id: 's', total_tokens: 1200 }));
    expect(state.total_tokens).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('creates new profiles with zero counters and level 1', () => {
    expect(createProfile('x')).toMatchObject({ total_invocations: 0, xp: 0, level: 1, last_active: '' });
  });

  it('derives the ratios from the counters, and 0, not NaN, from zero counters', () => {
    const counters = {
      total_invocations: 4,
      successful_invocations: 3,
      total_duration_seconds: 10,
      total_tokens: 100,
      total_cost_usd: 0.6,
    };
    expect(derivedMetricsOf(makeProfile(counters))).toEqual({
      success_rate: 0.75,
      avg_duration_seconds: 2.5,
      avg_tokens_per_call: 25,
      cost_per_success_usd: 0.19999999999999998, // 0.6 / 3 in binary floating point
    });
    expect(
      derivedMetricsOf(makeProfile({ ...counters, total_invocations: 0, successful_invocations: 0 })),
    ).toEqual({ success_rate: 0, avg_duration_seconds: 0, avg_tokens_per_call: 0, cost_per_success_usd: 0 });
    // Pure: the profile is left as it was.
    const profile = makeProfile({ total_invocations: 0, successful_invocations: 0, success_rate: 0.5 });
    derivedMetricsOf(profile);
    expect(profile.success_rate).toBe(0.5);
  });
});
