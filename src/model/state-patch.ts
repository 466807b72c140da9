import { isDeepStrictEqual } from 'node:util';
import { applyFifoEviction, type Caps } from './state.js';
import type { AgentEvent, AgentProfile, DashboardState, SessionSummary } from './types.js';

/**
 * One committed change of the state, as the journal keeps it: the new values of what changed.
 * Values are absolute (`total_tokens: 1234`, the whole changed profile), never increments, so
 * replaying a patch twice, or after a lost neighbour, cannot make a counter drift.
 * Keys are snake_case: patches are persisted.
 */
export interface StatePatch {
  /** Root keys other than `agents`, `events` and `sessions` whose value changed. */
  set?: Record<string, unknown>;
  /** Root keys removed. */
  unset?: string[];
  /** Profiles created or changed, whole. */
  agents?: Record<string, AgentProfile>;
  /** Profiles removed. */
  drop_agents?: string[];
  /** Events removed from the front (oldest first) before `events` are appended. */
  drop_events?: number;
  /** Events appended at the end (the common case). */
  events?: AgentEvent[];
  /** The whole event list, when older events were removed or reordered (not just appended). */
  all_events?: AgentEvent[];
  drop_sessions?: number;
  sessions?: SessionSummary[];
  all_sessions?: SessionSummary[];
  /** The FIFO caps the writer applied after the change; replay applies the same. */
  caps: { max_events: number; max_sessions: number };
}

const LISTS = new Set(['agents', 'events', 'sessions']);

/**
 * Stored events and finished sessions are history: they are shared, not copied, between the
 * store's cached state and every state it hands out, so they are frozen. Changing one in place
 * throws a TypeError; build a new list to rewrite history.
 */
function freezeRecord<T extends object>(record: T): T {
  if (Object.isFrozen(record)) return record;
  for (const value of Object.values(record)) if (Array.isArray(value)) Object.freeze(value);
  return Object.freeze(record);
}

export function freezeHistory(state: DashboardState): DashboardState {
  for (const event of state.events) freezeRecord(event);
  for (const session of state.sessions) freezeRecord(session);
  return state;
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty, not assignment: a key named `__proto__` must stay a key.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * A copy of `state` that a caller may change freely, made in time proportional to the number of
 * events (pointers only): every root key but the history is deep-copied; the `events` and
 * `sessions` lists are new arrays holding the same frozen records. Key order is kept.
 */
export function workingCopy(state: DashboardState): DashboardState {
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(state)) {
    if (key === 'events' || key === 'sessions') setOwn(copy, key, (value as unknown[]).slice());
    else setOwn(copy, key, typeof value === 'object' && value !== null ? structuredClone(value) : value);
  }
  return copy as DashboardState;
}

/**
 * How `after` continues `before`: the number of records dropped from the front of `before`
 * (a caller trimming the list itself) and the records appended, compared by identity; undefined
 * when `after` is not such a continuation (history rewritten).
 */
function continuationOf<T>(
  before: readonly T[],
  after: readonly T[],
): { drop: number; added: T[] } | undefined {
  const drop = after.length === 0 ? before.length : Math.max(0, before.indexOf(after[0] as T));
  const kept = before.length - drop;
  if (after.length < kept) return undefined;
  for (let index = 0; index < kept; index++) if (before[drop + index] !== after[index]) return undefined;
  return { drop, added: after.slice(kept) };
}

/**
 * What changed from `before` to `after` (`after` being a changed `workingCopy` of `before`).
 * Root values and profiles are compared deeply; histories by record identity, which is what
 * makes this cost independent of the number of events when records are only appended.
 */
export function diffStates(before: DashboardState, after: DashboardState, caps: Caps): StatePatch {
  const patch: StatePatch = { caps: { max_events: caps.maxEvents, max_sessions: caps.maxSessions } };
  const set: Record<string, unknown> = {};
  const unset: string[] = [];
  for (const key of Object.keys(after)) {
    if (LISTS.has(key)) continue;
    if (!Object.hasOwn(before, key) || !isDeepStrictEqual(before[key], after[key]))
      setOwn(set, key, after[key]);
  }
  for (const key of Object.keys(before)) if (!LISTS.has(key) && !Object.hasOwn(after, key)) unset.push(key);
  if (Object.keys(set).length > 0) patch.set = set;
  if (unset.length > 0) patch.unset = unset;

  const agents: Record<string, AgentProfile> = {};
  for (const [name, profile] of Object.entries(after.agents)) {
    const previous = Object.hasOwn(before.agents, name) ? before.agents[name] : undefined;
    if (!isDeepStrictEqual(previous, profile)) setOwn(agents, name, profile);
  }
  const dropped = Object.keys(before.agents).filter((name) => !Object.hasOwn(after.agents, name));
  if (Object.keys(agents).length > 0) patch.agents = agents;
  if (dropped.length > 0) patch.drop_agents = dropped;

  const events = continuationOf(before.events, after.events);
  if (events === undefined) patch.all_events = after.events;
  else {
    if (events.drop > 0) patch.drop_events = events.drop;
    if (events.added.length > 0) patch.events = events.added;
  }
  const sessions = continuationOf(before.sessions, after.sessions);
  if (sessions === undefined) patch.all_sessions = after.sessions;
  else {
    if (sessions.drop > 0) patch.drop_sessions = sessions.drop;
    if (sessions.added.length > 0) patch.sessions = sessions.added;
  }
  return patch;
}

/**
 * The part of `after` that is new and must be validated: everything but the history, plus the
 * appended records only (the rest of the history was validated when it was written).
 */
export function changedPart(after: DashboardState, patch: StatePatch): DashboardState {
  return {
    ...after,
    events: patch.all_events ?? patch.events ?? [],
    sessions: patch.all_sessions ?? patch.sessions ?? [],
  };
}

function continued<T>(list: T[], drop = 0, added?: T[]): T[] {
  const kept = drop > 0 ? list.slice(drop) : list;
  return added ? kept.concat(added) : kept;
}

/**
 * `state` with `patch` applied and the patch's caps enforced: a new state object (the input is
 * not modified; unchanged records are shared). New history records are frozen.
 */
export function applyPatch(state: DashboardState, patch: StatePatch): DashboardState {
  const next: Record<string, unknown> = {};
  const unset = new Set(patch.unset ?? []);
  for (const [key, value] of Object.entries(state)) if (!unset.has(key)) setOwn(next, key, value);
  for (const [key, value] of Object.entries(patch.set ?? {})) setOwn(next, key, value);

  const agents: Record<string, unknown> = {};
  const droppedAgents = new Set(patch.drop_agents ?? []);
  for (const [name, profile] of Object.entries(state.agents)) {
    if (!droppedAgents.has(name)) setOwn(agents, name, profile);
  }
  for (const [name, profile] of Object.entries(patch.agents ?? {})) setOwn(agents, name, profile);
  setOwn(next, 'agents', agents);

  const events = patch.all_events ?? continued(state.events, patch.drop_events, patch.events);
  const sessions = patch.all_sessions ?? continued(state.sessions, patch.drop_sessions, patch.sessions);
  for (const event of patch.all_events ?? patch.events ?? []) freezeRecord(event);
  for (const session of patch.all_sessions ?? patch.sessions ?? []) freezeRecord(session);
  setOwn(next, 'events', events);
  setOwn(next, 'sessions', sessions);
  return applyFifoEviction(next as DashboardState, {
    maxEvents: patch.caps.max_events,
    maxSessions: patch.caps.max_sessions,
  });
}
