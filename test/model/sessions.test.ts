import { describe, expect, it } from 'vitest';
import { type MetricsError, StateValidationError } from '../../src/errors.js';
import {
  addToOpenSession,
  endSession,
  findOpenSession,
  isCheckedOpenSessions,
  OPEN_SESSIONS_KEY,
  type OpenSession,
  openSessionsOf,
  recordedInOpenSession,
  setAsideMalformedOpenSessions,
  startSession,
} from '../../src/model/sessions.js';
import { createEmptyState } from '../../src/model/state.js';
import { cloneJson } from '../../src/model/working-copy.js';
import { makeSession } from '../helpers/builders.js';

const AT = '2026-01-01T10:00:00.000Z';
const start = (sessionId: string, maxOpenSessions = 100) => ({
  sessionId,
  type: 'initializer' as const,
  startedAt: AT,
  maxOpenSessions,
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as MetricsError).code;
  }
  return undefined;
}

describe('sessions', () => {
  it('numbers sessions after the highest known number, even when total_sessions lags', () => {
    const state = createEmptyState('p');
    state.sessions = [makeSession({ session_id: 'old', session_number: 7 })];
    state.total_sessions = 3;
    expect(startSession(state, start('a')).session_number).toBe(8);
    expect(startSession(state, start('b')).session_number).toBe(9);
    expect(state.total_sessions).toBe(5);
  });

  it('numbers a session after 200,000 kept sessions (a spread of their numbers overflowed the stack)', () => {
    const state = createEmptyState('p');
    state.sessions = Array.from({ length: 200_000 }, (_, i) =>
      makeSession({ session_id: `s${i}`, session_number: i + 1 }),
    );
    state.total_sessions = 200_000;
    expect(startSession(state, start('next')).session_number).toBe(200_001);
  });

  it('never reuses a number after finished sessions were evicted', () => {
    const state = createEmptyState('p');
    startSession(state, start('a'));
    endSession(state, 'a', 'complete', AT);
    state.sessions = []; // evicted by the FIFO cap
    expect(startSession(state, start('b')).session_number).toBe(2);
  });

  it('moves an ended session into sessions in the Python key order', () => {
    const state = createEmptyState('p');
    startSession(state, start('a'));
    const summary = endSession(state, 'a', 'error', '2026-01-01T11:00:00.000Z');
    expect(Object.keys(summary)).toEqual(Object.keys(makeSession()));
    expect(state.sessions).toEqual([summary]);
    expect(state[OPEN_SESSIONS_KEY]).toEqual([]);
  });

  it('rejects a duplicate id, an unknown session and a session ended twice with coded errors', () => {
    const state = createEmptyState('p');
    startSession(state, start('a'));
    expect(codeOf(() => startSession(state, start('a')))).toBe('E_CONFLICT');
    expect(codeOf(() => endSession(state, 'nope', 'complete', AT))).toBe('E_NOT_FOUND');
    endSession(state, 'a', 'complete', AT);
    expect(codeOf(() => endSession(state, 'a', 'complete', AT))).toBe('E_CONFLICT');
    expect(codeOf(() => startSession(state, start('a')))).toBe('E_CONFLICT');
  });

  it('rejects a given end before the start, and clamps a defaulted one to the start', () => {
    const state = createEmptyState('p');
    startSession(state, start('a'));
    expect(() => endSession(state, 'a', 'complete', '2026-01-01T09:00:00.000Z')).toThrow(
      'endedAt: is earlier than the session start (2026-01-01T10:00:00.000Z)',
    );
    expect(openSessionsOf(state)).toHaveLength(1);
    const summary = endSession(state, 'a', 'complete', '2026-01-01T09:00:00.000Z', false);
    expect(summary.ended_at).toBe(AT);
  });

  it('drops the oldest sessions in progress beyond maxOpenSessions', () => {
    const state = createEmptyState('p');
    for (const id of ['a', 'b', 'c']) startSession(state, start(id, 2));
    expect(openSessionsOf(state).map((s) => s.session_id)).toEqual(['b', 'c']);
    expect(state.total_sessions).toBe(3);
  });

  it('names the bad path when the extra key holds something else', () => {
    const state = createEmptyState('p');
    state[OPEN_SESSIONS_KEY] = [{ session_id: 'a', session_number: 'one' }];
    expect(() => openSessionsOf(state)).toThrow(StateValidationError);
    try {
      openSessionsOf(state);
    } catch (error) {
      expect((error as StateValidationError).paths).toContain('sessions_in_progress[0].session_number');
    }
  });

  it('moves a malformed sessions_in_progress aside, unchanged, and starts over with an empty list', () => {
    const now = new Date('2026-03-01T10:00:00.123Z');
    const state = createEmptyState('p');
    expect(setAsideMalformedOpenSessions(state, now)).toBeUndefined(); // absent
    startSession(state, start('a'));
    const good = structuredClone(state);
    expect(setAsideMalformedOpenSessions(state, now)).toBeUndefined();
    expect(state).toEqual(good);

    const bad = [{ session_id: 'a', session_number: 'one' }];
    state[OPEN_SESSIONS_KEY] = bad;
    const problem = setAsideMalformedOpenSessions(state, now);
    expect(problem).toBeInstanceOf(StateValidationError);
    expect(problem?.code).toBe('E_INVALID_STATE');
    expect(problem?.paths).toContain('sessions_in_progress[0].session_number');
    expect(problem?.message).toMatch(
      /^invalid sessions in progress, moved aside to sessions_in_progress_corrupt_20260301T100000\.123Z /,
    );
    expect(state['sessions_in_progress_corrupt_20260301T100000.123Z']).toBe(bad);
    expect(state[OPEN_SESSIONS_KEY]).toEqual([]);
    // Sessions start and end again; numbering goes on from total_sessions.
    expect(startSession(state, start('b')).session_number).toBe(2);
    expect(endSession(state, 'b', 'complete', AT).session_id).toBe('b');

    // Evidence is never overwritten: a second bad value in the same millisecond gets its own key.
    state[OPEN_SESSIONS_KEY] = 'junk';
    expect(setAsideMalformedOpenSessions(state, now)?.message).toContain(
      'moved aside to sessions_in_progress_corrupt_20260301T100000.123Z-2 ',
    );
    expect(state['sessions_in_progress_corrupt_20260301T100000.123Z']).toBe(bad);
    expect(state['sessions_in_progress_corrupt_20260301T100000.123Z-2']).toBe('junk');
  });
});

describe('recordedInOpenSession (a stored state: the list checked once, only the changed session copied)', () => {
  const event = (sessionId: string, tokens = 10) => ({
    session_id: sessionId,
    agent_name: 'coding',
    ticket_key: 'AI-7',
    total_tokens: tokens,
    estimated_cost_usd: 0.5,
  });
  function storedWithSessions(count: number) {
    const state = createEmptyState('p');
    for (let index = 0; index < count; index++) startSession(state, start(`s${index}`));
    return state as Record<string, unknown>;
  }

  it('adds the event to a copy of its session in a new list that shares the others; the stored list is unchanged', () => {
    const state = storedWithSessions(4);
    const stored = state[OPEN_SESSIONS_KEY] as OpenSession[];
    const before = cloneJson(stored);
    const next = recordedInOpenSession(state, event('s2')) as OpenSession[];
    // What finding the session and adding to it on a copy of the whole list gives.
    const expected = cloneJson(stored);
    addToOpenSession(
      findOpenSession({ [OPEN_SESSIONS_KEY]: expected } as never, 's2') as OpenSession,
      event('s2'),
    );
    expect(next).toEqual(expected);
    expect(stored).toEqual(before);
    expect(next).not.toBe(stored);
    expect(next[2]).not.toBe(stored[2]);
    for (const index of [0, 1, 3]) expect(next[index]).toBe(stored[index]);
    expect(isCheckedOpenSessions(next)).toBe(true);
    expect(isCheckedOpenSessions(stored)).toBe(true);
  });

  it('adds nothing when the session is not in progress, or when the list is malformed anywhere', () => {
    const state = storedWithSessions(3);
    expect(recordedInOpenSession(state, event('unknown'))).toBeUndefined();
    expect(recordedInOpenSession(state, event(''))).toBeUndefined();
    const broken = storedWithSessions(3);
    ((broken[OPEN_SESSIONS_KEY] as OpenSession[])[0] as Record<string, unknown>).total_tokens = 'lots';
    expect(recordedInOpenSession(broken, event('s2'))).toBeUndefined();
    expect(isCheckedOpenSessions(broken[OPEN_SESSIONS_KEY])).toBe(false);
  });

  it('does not vouch for a list whose changed session became invalid (a total past the largest exact integer)', () => {
    const state = storedWithSessions(2);
    ((state[OPEN_SESSIONS_KEY] as OpenSession[])[1] as OpenSession).total_tokens = Number.MAX_SAFE_INTEGER;
    const next = recordedInOpenSession(state, event('s1', 2)) as OpenSession[];
    expect(next[1]?.total_tokens).toBe(Number.MAX_SAFE_INTEGER + 2);
    expect(isCheckedOpenSessions(next)).toBe(false);
  });
});
