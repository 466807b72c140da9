import { History } from './history.js';
import { Profiles } from './profiles.js';
import { createProfile } from './record-event.js';
import type { Caps } from './state.js';
import type { AgentEvent, AgentProfile, DashboardState, SessionSummary } from './types.js';
import {
  type HistoryKey,
  isPlainObject,
  isUnreadProfile,
  setOwn,
  unreadAgents,
  unreadHistory,
} from './working-copy.js';

/**
 * One committed change of the state, as the journal keeps it: the new values of what changed.
 * Values are absolute (`total_tokens: 1234`), never increments, so replaying a patch twice, or
 * after a lost neighbour, cannot make a counter drift.
 * Keys are snake_case: patches are persisted.
 */
export interface StatePatch {
  /** Root keys other than `agents`, `events` and `sessions` whose value changed. */
  set?: Record<string, unknown>;
  /** Root keys removed. */
  unset?: string[];
  /** Profiles created, or replaced by something that is not a profile, whole. */
  agents?: Record<string, AgentProfile>;
  /**
   * Profiles changed field by field (see `profileChange`): lists that did not change are left
   * out, and a list that moved on is written as its new items. Written whole, a profile's lists
   * were most of every journal line (2.2 KB per recorded event, 1.4 KB this way).
   */
  agent_fields?: Record<string, ProfileChange>;
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

/** The fields of one profile that changed: new values, removed keys, and lists that moved on. */
export interface ProfileChange {
  set?: Record<string, unknown>;
  unset?: string[];
  /**
   * Lists of primitives that dropped `drop` items from the front and had `push` appended (the
   * profile's `recent_events` on every event): the new items, not the whole list again.
   */
  shift?: Record<string, { drop: number; push: unknown[] }>;
}

/**
 * The state as the store keeps it between changes: the histories as `History` lists and the
 * profiles as `Profiles`, so that recording an event costs the same with 500 or 50,000 events
 * kept, and with 1 or 5,000 agents. Never changed in place;
 * states handed out are `workingCopy`s of it. Its values are plain JSON (parsed from the files).
 */
export interface StoredState {
  agents: Profiles;
  events: History<AgentEvent>;
  sessions: History<SessionSummary>;
  [key: string]: unknown;
}

const HISTORY_KEYS: readonly HistoryKey[] = ['events', 'sessions'];
const LISTS = new Set(['agents', 'events', 'sessions']);

/**
 * Stored events and finished sessions are history: they are shared, not copied, between the
 * store's state and every state it hands out, so they are frozen, all the way down (a record may
 * hold objects under keys of its own, which a caller could otherwise change in every later state
 * of the store). Changing one in place throws a TypeError; build a new list to rewrite history.
 */
function freezeRecord<T extends object>(record: T): T {
  if (Object.isFrozen(record)) return record;
  freezeDeep(record);
  return record;
}

function freezeDeep(value: object): void {
  Object.freeze(value);
  for (const inner of Object.values(value)) {
    if (typeof inner === 'object' && inner !== null && !Object.isFrozen(inner)) freezeDeep(inner);
  }
}

/** Deep equality of two JSON values (what changed is compared this way; faster than util.isDeepStrictEqual). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let index = 0; index < a.length; index++) if (!jsonEqual(a[index], b[index])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(b, key)) return false;
    if (!jsonEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])) return false;
  }
  return true;
}

/** `state` as the store keeps it; takes over its history arrays and freezes their records. */
export function toStored(state: DashboardState): StoredState {
  const stored: Record<string, unknown> = {};
  for (const key of Object.keys(state)) {
    const value = state[key];
    if (HISTORY_KEYS.includes(key as HistoryKey)) {
      for (const record of value as object[]) freezeRecord(record);
      setOwn(stored, key, History.adopt(value as object[]));
    } else if (key === 'agents') setOwn(stored, key, Profiles.from(value as Record<string, AgentProfile>));
    else setOwn(stored, key, value);
  }
  return stored as StoredState;
}

/**
 * How the working copy's list continues `before`: the number of records dropped from the front
 * (a caller trimming the list itself) and the records appended, compared by identity; undefined
 * when it is not such a continuation (history rewritten).
 */
function continuationOf<T extends object>(
  before: History<T>,
  working: DashboardState,
  key: HistoryKey,
): { drop: number; added: T[] } | undefined {
  const unread = unreadHistory(working, key);
  if (unread?.base === before) return { drop: 0, added: unread.appended as T[] };
  const after = working[key] as unknown as T[];
  const drop = after.length === 0 ? before.length : Math.max(0, before.indexOf(after[0] as T));
  const kept = before.length - drop;
  if (after.length < kept) return undefined;
  for (let index = 0; index < kept; index++) if (before.at(drop + index) !== after[index]) return undefined;
  return { drop, added: after.slice(kept) };
}

/**
 * How the list `after` continues `before`: items dropped from the front, items appended; only
 * for lists of primitives (compared with ===), and only when that is shorter than `after` itself.
 */
function shiftOf(before: unknown, after: unknown): { drop: number; push: unknown[] } | undefined {
  if (!Array.isArray(before) || !Array.isArray(after) || after.length === 0) return undefined;
  const drop = before.indexOf(after[0]);
  if (drop < 0) return undefined;
  const kept = before.length - drop;
  if (kept > after.length) return undefined;
  for (let index = 0; index < kept; index++) {
    const item = after[index];
    if (typeof item === 'object' || before[drop + index] !== item) return undefined;
  }
  return { drop, push: after.slice(kept) };
}

/**
 * How `current` differs from `previous`; undefined when it does not. Every value that is not a
 * list is written, changed or not (~30 numbers and strings), so that each line holds the profile's
 * counters as its writer left them: replayed after a damaged line that had to be skipped, the
 * counters and the rates derived from them still agree, as they did with whole profiles. Lists
 * (`recent_events`, `achievements`, …), most of a profile's bytes, are written only when changed.
 */
function profileChange(previous: AgentProfile, current: AgentProfile): ProfileChange | undefined {
  const change: ProfileChange = {};
  const set: Record<string, unknown> = {};
  const shift: Record<string, { drop: number; push: unknown[] }> = {};
  let changed = false;
  for (const key of Object.keys(current)) {
    const value = current[key];
    const had = Object.hasOwn(previous, key);
    const same = had && jsonEqual(previous[key], value);
    if (!same) changed = true;
    if (Array.isArray(value) && same) continue;
    const moved = Array.isArray(value) && had && !same ? shiftOf(previous[key], value) : undefined;
    if (moved) setOwn(shift, key, moved);
    else setOwn(set, key, value);
  }
  const unset = Object.keys(previous).filter((key) => !Object.hasOwn(current, key));
  if (!changed && unset.length === 0) return undefined;
  if (Object.keys(set).length > 0) change.set = set;
  if (unset.length > 0) change.unset = unset;
  if (Object.keys(shift).length > 0) change.shift = shift;
  return change;
}

/**
 * `profile` (undefined when the line that created it was damaged and skipped: then a new
 * profile's defaults) with `change` applied; a new object, `profile` is not modified.
 */
export function applyProfileChange(
  name: string,
  profile: AgentProfile | undefined,
  change: ProfileChange,
): AgentProfile {
  const base: Record<string, unknown> = profile ?? createProfile(name);
  const kept = change.unset === undefined ? base : withoutKeys(base, change.unset);
  const shifted: Record<string, unknown> = {};
  const shifts = change.shift ?? {};
  for (const key of Object.keys(shifts)) {
    const { drop, push } = shifts[key] as { drop: number; push: unknown[] };
    const list = Array.isArray(base[key]) ? (base[key] as unknown[]).slice(drop) : [];
    for (const item of push) list.push(item);
    setOwn(shifted, key, list);
  }
  // Spread, not assignment: it defines own data properties (a `__proto__` key stays a key), and
  // copies a profile several times faster than defining its ~35 keys one by one.
  return { ...kept, ...change.set, ...shifted } as AgentProfile;
}

/** A copy of `value` without `keys`. */
function withoutKeys(value: object, keys: readonly string[]): Record<string, unknown> {
  const removed = new Set(keys);
  const kept: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (!removed.has(key)) setOwn(kept, key, (value as Record<string, unknown>)[key]);
  }
  return kept;
}

/**
 * What changed from `before` to `after` (`after` being a changed `workingCopy` of `before`).
 * Root values and profiles are compared deeply; histories by record identity, which is what
 * makes this cost independent of the number of records kept when records are only appended.
 */
export function diffStates(before: StoredState, after: DashboardState, caps: Caps): StatePatch {
  const patch: StatePatch = { caps: { max_events: caps.maxEvents, max_sessions: caps.maxSessions } };
  const set: Record<string, unknown> = {};
  const unset: string[] = [];
  for (const key of Object.keys(after)) {
    if (LISTS.has(key)) continue;
    if (!Object.hasOwn(before, key) || !jsonEqual(before[key], after[key])) setOwn(set, key, after[key]);
  }
  for (const key of Object.keys(before)) if (!LISTS.has(key) && !Object.hasOwn(after, key)) unset.push(key);
  if (Object.keys(set).length > 0) patch.set = set;
  if (unset.length > 0) patch.unset = unset;

  // `agents` not read by the mutator equals the stored profiles: not read now either.
  if (unreadAgents(after) !== before.agents) diffProfiles(before, after, patch);

  const events = continuationOf(before.events, after, 'events');
  if (events === undefined) patch.all_events = after.events;
  else {
    if (events.drop > 0) patch.drop_events = events.drop;
    if (events.added.length > 0) patch.events = events.added;
  }
  const sessions = continuationOf(before.sessions, after, 'sessions');
  if (sessions === undefined) patch.all_sessions = after.sessions;
  else {
    if (sessions.drop > 0) patch.drop_sessions = sessions.drop;
    if (sessions.added.length > 0) patch.sessions = sessions.added;
  }
  return patch;
}

/** The profiles' part of `diffStates`: what changed from `before.agents` to `after.agents`. */
function diffProfiles(before: StoredState, after: DashboardState, patch: StatePatch): void {
  const agents: Record<string, AgentProfile> = {};
  const fields: Record<string, ProfileChange> = {};
  // The object the working copy was made from (made once per state, see `Profiles.toRecord`).
  const stored = before.agents.toRecord();
  // Profiles set to undefined: JSON drops the key, as a whole file written from `after` would.
  const undefinedProfiles: string[] = [];
  for (const name of Object.keys(after.agents)) {
    // A profile the mutator did not read is the stored one: not read now either (no copy made).
    if (isUnreadProfile(after.agents, name, stored)) continue;
    const previous = Object.hasOwn(stored, name) ? stored[name] : undefined;
    const current = after.agents[name];
    if (current === undefined) {
      if (previous !== undefined) undefinedProfiles.push(name);
      continue;
    }
    if (isPlainObject(previous) && isPlainObject(current)) {
      const change = profileChange(previous as AgentProfile, current as AgentProfile);
      if (change) setOwn(fields, name, change);
    } else if (!jsonEqual(previous, current)) setOwn(agents, name, current);
  }
  const dropped = Object.keys(stored).filter((name) => !Object.hasOwn(after.agents, name));
  for (const name of undefinedProfiles) dropped.push(name);
  if (Object.keys(agents).length > 0) patch.agents = agents;
  if (Object.keys(fields).length > 0) patch.agent_fields = fields;
  if (dropped.length > 0) patch.drop_agents = dropped;
}

/**
 * For each profile a (journaled) patch changes field by field: the values of `after` (the state
 * the patch led to) that differ from the stored profile, and the keys removed; what needs
 * validating. A line holds every value of a changed profile that is not a list, but most are
 * unchanged, and were validated when first written.
 */
export function changedProfileValues(
  before: StoredState,
  after: StoredState,
  patch: StatePatch,
): Array<{ values: Record<string, unknown>; removed: readonly string[] }> {
  return Object.entries(patch.agent_fields ?? {}).map(([name, change]) => {
    const previous = before.agents.get(name) as Record<string, unknown>;
    const next = after.agents.get(name) as Record<string, unknown>;
    const values: Record<string, unknown> = {};
    const collect = (changed: object | undefined) => {
      if (changed === undefined) return;
      for (const key of Object.keys(changed)) {
        // Equal primitives only: parsed objects and lists are never ===.
        if (Object.hasOwn(previous, key) && previous[key] === next[key]) continue;
        setOwn(values, key, next[key]);
      }
    };
    collect(change.set);
    collect(change.shift);
    return { values, removed: change.unset ?? [] };
  });
}

/**
 * `patch` as the journal holds it, and its JSON: what JSON.parse gives back, so that what is
 * validated and kept in memory is exactly what a replay will read (a `toJSON`, a prototype, a
 * getter or `-0` can make a live value differ from its JSON). A key of a `set` that JSON drops
 * (undefined, a function, a symbol, a `toJSON` giving undefined) is moved to `unset`, as a whole
 * file written from that state would lack it. Throws what JSON.stringify throws (BigInt, cycles).
 */
export function journalForm(patch: StatePatch): { patch: StatePatch; json: string } {
  const json = JSON.stringify(patch);
  const parsed = JSON.parse(json) as StatePatch;
  let moved = dropToUnset(patch.set, parsed, parsed.set);
  for (const [name, change] of Object.entries(patch.agent_fields ?? {})) {
    const parsedChange = parsed.agent_fields?.[name] as ProfileChange;
    if (dropToUnset(change.set, parsedChange, parsedChange.set)) moved = true;
  }
  return moved ? { patch: parsed, json: JSON.stringify(parsed) } : { patch: parsed, json };
}

/** Moves the keys of `set` that `parsedSet` lacks (JSON dropped them) to `target.unset`. */
function dropToUnset(
  set: Record<string, unknown> | undefined,
  target: { set?: Record<string, unknown>; unset?: string[] },
  parsedSet: Record<string, unknown> | undefined,
): boolean {
  const dropped = Object.keys(set ?? {}).filter((key) => !Object.hasOwn(parsedSet ?? {}, key));
  if (dropped.length === 0) return false;
  target.unset = [...(target.unset ?? []), ...dropped];
  if (target.set && Object.keys(target.set).length === 0) delete target.set;
  return true;
}

/**
 * When a mutator left `agents`, `events` or `sessions` as something other than a plain object or
 * an array (deleted, replaced by an array, a Map, a string, …): the root with those containers as
 * they are, for `validateState` to name the problem. Undefined when the containers are sound.
 */
export function malformedContainers(after: DashboardState): DashboardState | undefined {
  const agentsSound = unreadAgents(after) !== undefined || isPlainObject(after.agents);
  const sound = (key: HistoryKey) => unreadHistory(after, key) !== undefined || Array.isArray(after[key]);
  const eventsSound = sound('events');
  const sessionsSound = sound('sessions');
  if (agentsSound && eventsSound && sessionsSound) return undefined;
  const part: Record<string, unknown> = {};
  for (const key of Object.keys(after)) if (!LISTS.has(key)) setOwn(part, key, after[key]);
  setOwn(part, 'agents', agentsSound ? {} : after.agents);
  setOwn(part, 'events', eventsSound ? [] : after.events);
  setOwn(part, 'sessions', sessionsSound ? [] : after.sessions);
  return part as DashboardState;
}

/**
 * The part of the state after `patch` that is new and must be validated, as the journal holds
 * it: the root values, the changed profiles whole, and the appended records only (the rest was
 * validated when it was written).
 */
export function changedPart(before: StoredState, patch: StatePatch): DashboardState {
  const part: Record<string, unknown> = {};
  const removed = new Set(patch.unset ?? []);
  for (const key of Object.keys(before)) {
    if (!LISTS.has(key) && !removed.has(key)) setOwn(part, key, before[key]);
  }
  for (const [key, value] of Object.entries(patch.set ?? {})) setOwn(part, key, value);
  const profiles: Record<string, unknown> = {};
  for (const [name, profile] of Object.entries(patch.agents ?? {})) setOwn(profiles, name, profile);
  for (const [name, change] of Object.entries(patch.agent_fields ?? {})) {
    setOwn(profiles, name, applyProfileChange(name, before.agents.get(name), change));
  }
  setOwn(part, 'agents', profiles);
  setOwn(part, 'events', patch.all_events ?? patch.events ?? []);
  setOwn(part, 'sessions', patch.all_sessions ?? patch.sessions ?? []);
  return part as DashboardState;
}

function continued<T extends object>(
  list: History<T>,
  all: T[] | undefined,
  drop = 0,
  added: T[] = [],
  cap = Number.POSITIVE_INFINITY,
): History<T> {
  for (const record of all ?? added) freezeRecord(record);
  const next = all ? History.adopt(all) : list.dropFront(drop).append(added);
  return next.length > cap ? next.keepLast(cap) : next;
}

/** `target` with the own keys of `source` set on it through `setOwn` (a `__proto__` key stays a key). */
function withKeysSet(target: Record<string, unknown>, source: object | undefined): Record<string, unknown> {
  if (source === undefined || source === null) return target;
  for (const key of Object.keys(source)) setOwn(target, key, (source as Record<string, unknown>)[key]);
  return target;
}

/**
 * `state` with `patch` applied and the patch's caps enforced (newest records kept): a new state
 * (the input is not modified; unchanged values and records are shared). The patch's records are
 * taken over and frozen.
 */
export function applyPatch(state: StoredState, patch: StatePatch): StoredState {
  // This runs for every recorded event: what it allocates per event sets how often the
  // young-generation GC runs. Object spread defines own data properties (as `setOwn` does: a
  // `__proto__` key stays a key, and a replaced key keeps its place) and is the fastest copy;
  // stored states hold no accessors. Keys are dropped by a loop, and no Set for an empty list.
  const kept = patch.drop_agents?.length ? state.agents.without(patch.drop_agents) : state.agents;
  const changed = withKeysSet({}, patch.agents) as Record<string, AgentProfile>;
  const fields = patch.agent_fields ?? {};
  for (const name of Object.keys(fields)) {
    const previous = Object.hasOwn(changed, name) ? changed[name] : kept.get(name);
    setOwn(changed, name, applyProfileChange(name, previous, fields[name] as ProfileChange));
  }
  const agents = kept.with(changed);
  const { max_events, max_sessions } = patch.caps;
  const lists = {
    agents,
    events: continued(state.events, patch.all_events, patch.drop_events, patch.events, max_events),
    sessions: continued(
      state.sessions,
      patch.all_sessions,
      patch.drop_sessions,
      patch.sessions,
      max_sessions,
    ),
  };
  const next = patch.unset?.length
    ? withKeysSet(withKeysSet(withoutKeys(state, patch.unset), patch.set), lists)
    : { ...state, ...patch.set, ...lists };
  return next as StoredState;
}
