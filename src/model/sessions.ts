import * as v from 'valibot';
import { InvalidInputError, MetricsError, StateValidationError } from '../errors.js';
import { collectIssues, objectOnly, sessionSummaryEntries } from './schema.js';
import { isValid } from './schema-predicate.js';
import type { DashboardState, SessionStatus, SessionSummary, SessionType } from './types.js';
import { appendRecord, cloneJson } from './working-copy.js';

/**
 * Sessions are persisted from the moment they start, so that a crash mid-session loses nothing:
 * a started session lives in the extra root key `sessions_in_progress` (design.md §2 allows extra
 * keys; the Python dashboard ignores it) until `endSession` moves it, with its totals, into
 * `sessions`.
 *
 * Numbering: `total_sessions` counts sessions *started* (in progress or finished). It is the
 * persisted counter that numbers sessions: a new session gets the next number, so numbers are
 * unique and consecutive across processes (every start is one locked update) and are never
 * reused after old sessions are evicted from `sessions`. Once every session has ended,
 * `total_sessions` equals the number of sessions ever finished, as in files the Python side wrote.
 */
export const OPEN_SESSIONS_KEY = 'sessions_in_progress';

/** A started session: a `SessionSummary` without `ended_at` and `status`. */
export interface OpenSession {
  session_id: string;
  session_number: number;
  session_type: SessionType;
  started_at: string;
  agents_invoked: string[];
  total_tokens: number;
  total_cost_usd: number;
  tickets_worked: string[];
  [extra: string]: unknown;
}

const { ended_at: _endedAt, status: _status, ...openSessionEntries } = sessionSummaryEntries;
const openSessionSchema = objectOnly(v.looseObject(openSessionEntries));
const openSessionsSchema = v.array(openSessionSchema);

/**
 * The sessions in progress, from the state's extra root key (created when missing). Throws
 * `StateValidationError` (E_INVALID_STATE) naming the bad path when the key holds something else
 * (`setAsideMalformedOpenSessions` repairs that).
 */
export function openSessionsOf(state: DashboardState): OpenSession[] {
  const value = state[OPEN_SESSIONS_KEY];
  if (value === undefined) {
    const created: OpenSession[] = [];
    state[OPEN_SESSIONS_KEY] = created;
    return created;
  }
  const issues = collectIssues(openSessionsSchema, value, [OPEN_SESSIONS_KEY]);
  if (issues.length > 0) throw new StateValidationError(issues, 'invalid sessions in progress');
  return value as OpenSession[];
}

/** A malformed `sessions_in_progress` value is moved to `sessions_in_progress_corrupt_<UTC timestamp>`. */
export const CORRUPT_OPEN_SESSIONS_PREFIX = `${OPEN_SESSIONS_KEY}_corrupt_`;

/**
 * Repairs a `sessions_in_progress` value that is not a list of sessions in progress (a bug or a
 * hand edit; one bad value must not block every later `startSession`/`endSession`): moves the
 * value aside, unchanged, to the extra root key `sessions_in_progress_corrupt_<now, UTC>` (evidence
 * kept, as for a corrupt file; a taken key gets `-2`, `-3`, …) and starts over with an empty list.
 * Returns what was wrong, naming the bad paths, for the caller to report; `undefined` when the
 * value was fine or absent. Call it before `startSession` and `endSession`, in the same update.
 */
export function setAsideMalformedOpenSessions(
  state: DashboardState,
  now: Date,
): StateValidationError | undefined {
  const value = state[OPEN_SESSIONS_KEY];
  if (value === undefined) return undefined;
  const issues = collectIssues(openSessionsSchema, value, [OPEN_SESSIONS_KEY]);
  if (issues.length === 0) return undefined;
  const base = `${CORRUPT_OPEN_SESSIONS_PREFIX}${now.toISOString().replace(/[-:]/g, '')}`;
  let key = base;
  for (let attempt = 2; Object.hasOwn(state, key); attempt++) key = `${base}-${attempt}`;
  state[key] = value;
  state[OPEN_SESSIONS_KEY] = [];
  return new StateValidationError(
    issues,
    `invalid sessions in progress, moved aside to ${key} (the sessions in progress start over empty)`,
  );
}

export interface SessionStart {
  sessionId: string;
  type: SessionType;
  /** ISO timestamp (UTC, `Z`). */
  startedAt: string;
  /** Sessions in progress kept; the oldest are dropped beyond it (a crashed loop never ends its own). */
  maxOpenSessions: number;
}

/**
 * Starts a session: gives it the next session number, counts it in `total_sessions` and adds it
 * to the sessions in progress. Throws E_CONFLICT when the id is already in use.
 */
export function startSession(state: DashboardState, start: SessionStart): OpenSession {
  const open = openSessionsOf(state);
  const inUse =
    open.some((session) => session.session_id === start.sessionId) ||
    state.sessions.some((session) => session.session_id === start.sessionId);
  if (inUse) throw new MetricsError('E_CONFLICT', `session ${start.sessionId} already exists`);
  // The highest number seen guards against a file whose counter lags its sessions. A loop, not
  // `Math.max(...numbers)`: a spread of ~125,000 kept sessions overflows the call stack.
  let highest = state.total_sessions;
  for (const session of state.sessions) highest = Math.max(highest, session.session_number);
  for (const session of open) highest = Math.max(highest, session.session_number);
  const session: OpenSession = {
    session_id: start.sessionId,
    session_number: highest + 1,
    session_type: start.type,
    started_at: start.startedAt,
    agents_invoked: [],
    total_tokens: 0,
    total_cost_usd: 0,
    tickets_worked: [],
  };
  state.total_sessions += 1;
  open.push(session);
  if (open.length > start.maxOpenSessions) open.splice(0, open.length - start.maxOpenSessions);
  return session;
}

/**
 * Ends a session in progress: moves it into `sessions` (newest last) with its end time and
 * status. Throws E_CONFLICT for a session that already ended, E_NOT_FOUND for an unknown one, and
 * E_NOT_FOUND too for one that ended but was evicted from `sessions` since (FIFO, `maxSessions`):
 * no ended id is kept beyond them.
 * An end before the start is an input error when the caller gave it (`endedAtGiven`); when it
 * is "now" from a clock behind the one of the process that started the session, the session
 * ends at its start instead.
 */
export function endSession(
  state: DashboardState,
  sessionId: string,
  status: SessionStatus,
  endedAt: string,
  endedAtGiven = true,
): SessionSummary {
  const open = openSessionsOf(state);
  const index = open.findIndex((session) => session.session_id === sessionId);
  if (index < 0) {
    if (state.sessions.some((session) => session.session_id === sessionId)) {
      throw new MetricsError('E_CONFLICT', `session ${sessionId} has already ended`);
    }
    // A session ended long ago is evicted from `sessions` like any other; keeping every ended id
    // would let the file grow without bound, so the error says it may be one of those.
    throw new MetricsError(
      'E_NOT_FOUND',
      `session ${sessionId} is not in progress: an unknown id, or one that ended and is no longer among the kept sessions (maxSessions)`,
    );
  }
  const session = open[index] as OpenSession;
  let end = endedAt;
  if (Date.parse(endedAt) < Date.parse(session.started_at)) {
    if (endedAtGiven) {
      throw new InvalidInputError([
        { path: 'endedAt', message: `is earlier than the session start (${session.started_at})` },
      ]);
    }
    end = session.started_at;
  }
  open.splice(index, 1);
  const { session_id, session_number, session_type, started_at, ...rest } = session;
  // Same key order as the Python implementation writes; extra keys follow.
  const summary: SessionSummary = {
    session_id,
    session_number,
    session_type,
    started_at,
    ended_at: end,
    status,
    ...rest,
  };
  appendRecord(state, 'sessions', summary);
  return summary;
}

/**
 * The session in progress with this id, or `undefined` (none, or the extra key is malformed: an
 * event is still worth recording when the session bookkeeping of another writer is broken).
 */
export function findOpenSession(state: DashboardState, sessionId: string): OpenSession | undefined {
  const value = state[OPEN_SESSIONS_KEY];
  // Before the parse, which would report a missing key as an issue: no session is open in most
  // states, and this runs twice for every recorded event.
  if (sessionId === '' || !Array.isArray(value) || value.length === 0) return undefined;
  // The compiled predicate, not valibot's parse, which copied the whole list twice per event
  // (50 sessions in progress doubled the cost of a recorded event: 0.29 → 0.58 ms).
  if (!isValid(openSessionsSchema, value)) return undefined;
  return (value as OpenSession[]).find((session) => session.session_id === sessionId);
}

/**
 * Lists of sessions in progress of stored states found valid (`openSessionsSchema`), by identity.
 * A stored state's values are never changed in place, so a list checked once stays valid; each
 * event recorded in a session makes a new list, which `recordedInOpenSession` adds here when the
 * one session it changed is valid. Checking the whole list again for each event made recording
 * cost grow with the sessions in progress (100 of them: 4× an event without a session).
 */
const validStoredOpenSessions = new WeakSet<object>();

/** True when `value` is a list of sessions in progress of a stored state, known valid (see above). */
export function isCheckedOpenSessions(value: unknown): boolean {
  return typeof value === 'object' && value !== null && validStoredOpenSessions.has(value);
}

/**
 * `findOpenSession` and `addToOpenSession` for a state the store keeps (never changed in place,
 * its values within the nesting limit): the state's sessions in progress with one event added to
 * the session `event.session_id`, as a new list sharing the other sessions; undefined when that
 * session is not in progress (or the list is malformed). The rest of the list is not copied nor,
 * once checked, checked again.
 */
export function recordedInOpenSession(
  state: Readonly<Record<string, unknown>>,
  event: {
    session_id: string;
    agent_name: string;
    ticket_key: string;
    total_tokens: number;
    estimated_cost_usd: number;
  },
): OpenSession[] | undefined {
  const value = state[OPEN_SESSIONS_KEY];
  if (event.session_id === '' || !Array.isArray(value) || value.length === 0) return undefined;
  if (!validStoredOpenSessions.has(value)) {
    if (!isValid(openSessionsSchema, value)) return undefined;
    validStoredOpenSessions.add(value);
  }
  const list = value as OpenSession[];
  const index = list.findIndex((session) => session.session_id === event.session_id);
  if (index < 0) return undefined;
  const session = cloneJson(list[index] as OpenSession);
  addToOpenSession(session, event);
  const next = list.slice();
  next[index] = session;
  // Its nesting is the stored list's: adding numbers and strings makes nothing deeper.
  if (isValid(openSessionSchema, session)) validStoredOpenSessions.add(next);
  return next;
}

/** Adds one event's tokens, cost, agent and ticket to the session's running totals. */
export function addToOpenSession(
  session: OpenSession,
  event: { agent_name: string; ticket_key: string; total_tokens: number; estimated_cost_usd: number },
): void {
  session.total_tokens += event.total_tokens;
  session.total_cost_usd += event.estimated_cost_usd;
  if (!session.agents_invoked.includes(event.agent_name)) session.agents_invoked.push(event.agent_name);
  if (event.ticket_key !== '' && !session.tickets_worked.includes(event.ticket_key)) {
    session.tickets_worked.push(event.ticket_key);
  }
}
