import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyFifoEviction, createEmptyState } from '../../src/model/state.js';
import { makeState } from '../helpers/builders.js';

describe('createEmptyState', () => {
  it('has the 11 root keys with zero totals and the given project', () => {
    const state = createEmptyState('demo', new Date('2026-03-01T00:00:00Z'));
    expect(Object.keys(state).sort()).toEqual(
      [
        'version',
        'project_name',
        'created_at',
        'updated_at',
        'total_sessions',
        'total_tokens',
        'total_cost_usd',
        'total_duration_seconds',
        'agents',
        'events',
        'sessions',
      ].sort(),
    );
    expect(state.project_name).toBe('demo');
    expect(state.created_at).toBe('2026-03-01T00:00:00.000Z');
  });
});

describe('applyFifoEviction', () => {
  it('keeps the newest events and sessions, oldest first', () => {
    const state = makeState(10, 6);
    const capped = applyFifoEviction(state, { maxEvents: 4, maxSessions: 2 });
    expect(capped.events.map((event) => event.event_id)).toEqual(['evt-6', 'evt-7', 'evt-8', 'evt-9']);
    expect(capped.sessions.map((session) => session.session_number)).toEqual([5, 6]);
    expect(state.events).toHaveLength(10); // the input is not modified
  });

  it('returns the same object when nothing is over the caps', () => {
    const state = makeState(3, 1);
    expect(applyFifoEviction(state, { maxEvents: 3, maxSessions: 1 })).toBe(state);
  });

  it('is always a suffix of at most the cap, and never changes counters', () => {
    fc.assert(
      fc.property(fc.nat({ max: 60 }), fc.nat({ max: 20 }), fc.integer({ min: 1, max: 70 }), (n, s, cap) => {
        const state = makeState(n, s);
        state.total_tokens = 123;
        const capped = applyFifoEviction(state, { maxEvents: cap, maxSessions: cap });
        expect(capped.events).toEqual(state.events.slice(Math.max(0, n - cap)));
        expect(capped.sessions).toHaveLength(Math.min(s, cap));
        expect(capped.total_tokens).toBe(123);
        expect(capped.agents).toBe(state.agents);
      }),
    );
  });
});
