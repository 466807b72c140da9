import { describe, expect, it } from 'vitest';
import { type MetricsError, StateValidationError } from '../../src/errors.js';
import {
  endSession,
  OPEN_SESSIONS_KEY,
  openSessionsOf,
  setAsideMalformedOpenSessions,
  startSession,
} from '../../src/model/sessions.js';
import { createEmptyState } from '../../src/model/state.js';
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
