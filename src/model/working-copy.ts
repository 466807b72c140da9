import { History } from './history.js';
import type { AgentProfile, DashboardState } from './types.js';

/**
 * Working copies: the states the store hands to mutators and returns to callers. They may be
 * changed freely without touching the store's own state, and they are cheap to make whatever the
 * size of the state, because what a mutator does not read is not copied:
 * - `events` and `sessions` become arrays only when read (`appendRecord` appends without reading);
 * - each profile in `agents` is deep-copied only when read (recording an event reads one).
 * Everything else is deep-copied at once (a few small values).
 *
 * Hand-written because nothing built in does this: structuredClone copies everything (it was the
 * largest single cost of a recorded event in a CPU profile), and a Proxy would slow every read of
 * the mutator and show up in `util.types.isProxy`, equality checks and stack traces.
 */

export type HistoryKey = 'events' | 'sessions';

/** The store's state as working copies are made from (`StoredState` in state-patch.ts). */
export interface CopySource {
  /** `Profiles` (profiles.ts, which imports this file). */
  agents: { toRecord(): Record<string, AgentProfile> };
  [key: string]: unknown;
}

/**
 * Makes `key` an own data property of `target`, whatever the key: `__proto__` stays a key, and an
 * accessor (a copy's lazy list or profile) is replaced, not called.
 */
export function setOwn(target: object, key: string, value: unknown): void {
  // Assignment where it does the same (a new key of a plain object): defineProperty is several
  // times slower, and this runs for every key of every state the store makes.
  if (key !== '__proto__' && !Object.hasOwn(target, key)) (target as Record<string, unknown>)[key] = value;
  else Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** An object of the built-in kind (`{}` or `Object.create(null)`): not an array, a class instance, a Date, … */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** A deep copy of a JSON value (stored values are plain JSON: objects, arrays and primitives). */
export function cloneJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const item = cloneJson((value as Record<string, unknown>)[key]);
    if (key === '__proto__') setOwn(copy, key, item);
    else copy[key] = item;
  }
  return copy as T;
}

// ---- histories -------------------------------------------------------------------------------

interface UnreadHistory {
  base: History<object>;
  appended: object[];
}

/**
 * A copy's histories not read yet, with the records `appendRecord` added to them. Kept in a
 * non-enumerable symbol property (JSON, Object.keys and equality checks do not see it) rather
 * than a WeakMap, whose entries cost the garbage collector more (two copies per update).
 */
const UNREAD_HISTORIES = Symbol('unread histories');
type CopyRoot = Record<string, unknown> & {
  [UNREAD_HISTORIES]?: Partial<Record<HistoryKey, UnreadHistory>>;
};

/**
 * The history `key` of `copy` when it was not read yet: its stored list and the records appended.
 * Only while the property is still the lazy accessor: `delete copy.events` removes the accessor
 * without telling us, and whatever is put there afterwards is the mutator's own list.
 */
export function unreadHistory(copy: object, key: HistoryKey): UnreadHistory | undefined {
  const unread = (copy as CopyRoot)[UNREAD_HISTORIES]?.[key];
  if (unread === undefined) return undefined;
  return Object.getOwnPropertyDescriptor(copy, key)?.get === HISTORY_ACCESSORS[key].get ? unread : undefined;
}

function settleHistory(copy: CopyRoot, key: HistoryKey, value: unknown): void {
  const unread = copy[UNREAD_HISTORIES];
  if (unread) delete unread[key];
  setOwn(copy, key, value);
}

function readHistory(copy: CopyRoot, key: HistoryKey): object[] {
  const unread = unreadHistory(copy, key) as UnreadHistory;
  const records = unread.base.toArray();
  for (const record of unread.appended) records.push(record);
  settleHistory(copy, key, records);
  return records;
}

// Shared by every copy (no closure per copy): `this` is the copy.
const HISTORY_ACCESSORS = {
  events: {
    get(this: CopyRoot) {
      return readHistory(this, 'events');
    },
    set(this: CopyRoot, value: unknown) {
      settleHistory(this, 'events', value);
    },
  },
  sessions: {
    get(this: CopyRoot) {
      return readHistory(this, 'sessions');
    },
    set(this: CopyRoot, value: unknown) {
      settleHistory(this, 'sessions', value);
    },
  },
};

function defineLazyHistory(copy: CopyRoot, key: HistoryKey, base: History<object>): void {
  let unread = copy[UNREAD_HISTORIES];
  if (unread === undefined) {
    unread = {};
    Object.defineProperty(copy, UNREAD_HISTORIES, { value: unread, configurable: true });
  }
  unread[key] = { base, appended: [] };
  Object.defineProperty(copy, key, { enumerable: true, configurable: true, ...HISTORY_ACCESSORS[key] });
}

/**
 * Appends `record` to `state.events` or `state.sessions`: the same as `push`, but without making
 * the array of a working copy whose history was not read yet.
 */
export function appendRecord<K extends HistoryKey>(
  state: DashboardState,
  key: K,
  record: DashboardState[K][number],
): void {
  const unread = unreadHistory(state, key);
  if (unread) unread.appended.push(record);
  else (state[key] as object[]).push(record);
}

// ---- profiles --------------------------------------------------------------------------------

/**
 * A copy's `agents` object: the stored `agents` it copies, each profile's getter, and the names of
 * the profiles read or replaced since.
 */
const PROFILE_GETTERS = Symbol('profile getters');
interface LazyProfiles {
  source: Record<string, AgentProfile>;
  getters: Map<string, () => AgentProfile>;
  touched: Set<string>;
}
type CopyAgents = Record<string, AgentProfile> & { [PROFILE_GETTERS]?: LazyProfiles };

/**
 * Each profile an accessor that copies the stored one at its first read and keeps what is read or
 * assigned after. The accessors stay: turning one into a data property at its first read copied
 * the object's property list each time while V8 keeps it in fast mode (up to ~1,020 properties),
 * so reading every profile of a copy was quadratic (800 agents: 1.4 s for `Object.values`).
 */
function lazyAgents(stored: Record<string, AgentProfile>): CopyAgents {
  const agents: CopyAgents = {};
  const getters = new Map<string, () => AgentProfile>();
  const touched = new Set<string>();
  Object.defineProperty(agents, PROFILE_GETTERS, { value: { source: stored, getters, touched } });
  for (const name of Object.keys(stored)) {
    let profile: AgentProfile | undefined;
    const get = () => {
      if (!touched.has(name)) {
        profile = cloneJson(stored[name] as AgentProfile);
        touched.add(name);
      }
      return profile as AgentProfile;
    };
    getters.set(name, get);
    Object.defineProperty(agents, name, {
      enumerable: true,
      configurable: true,
      get,
      set: (value: AgentProfile) => {
        profile = value;
        touched.add(name);
      },
    });
  }
  return agents;
}

/**
 * True when the profile `name` of a copy of `stored.agents` was neither read nor replaced (so it
 * equals the stored one). False for anything else: an `agents` object the mutator built anew, or
 * the `agents` of a copy of another state (an earlier load assigned back).
 */
export function isUnreadProfile(agents: object, name: string, stored: Record<string, AgentProfile>): boolean {
  const lazy = (agents as CopyAgents)[PROFILE_GETTERS];
  if (lazy === undefined || lazy.source !== stored || lazy.touched.has(name)) return false;
  const get = lazy.getters.get(name);
  return get !== undefined && Object.getOwnPropertyDescriptor(agents, name)?.get === get;
}

/**
 * A copy's `agents` is made at its first read, as its histories are: making it defines an accessor
 * per profile, and an `update()` that does not touch the profiles (starting or ending a session)
 * took 20 ms with 10,000 agents for that alone. Until then `agents` is an accessor, which the first
 * read or assignment replaces with a plain value (as the stored state had). A frozen or sealed copy
 * cannot be redefined: its value is kept in `fixedAgents` (a frozen one refuses an assignment, as
 * its value would). An object inheriting from a copy reads the copy's, and an assignment through
 * it gives it its own, as with an inherited data property.
 */
const LAZY_AGENTS = Symbol('lazy agents');
interface LazyAgentsSlot {
  /** The stored profiles; never changed, so a clone made from a copy's descriptors may share it. */
  source: CopySource['agents'];
}
type AgentsRoot = Record<string, unknown> & { [LAZY_AGENTS]?: LazyAgentsSlot };

/** The value of `agents` of copies whose accessor cannot be replaced (frozen or sealed), by copy. */
const fixedAgents = new WeakMap<object, unknown>();

/** The object that owns the lazy `agents` accessor `target` reads: itself, or one it inherits from. */
function accessorOwner(target: object): AgentsRoot | undefined {
  for (let object: object | null = target; object !== null; object = Object.getPrototypeOf(object)) {
    const own = Object.getOwnPropertyDescriptor(object, 'agents');
    if (own !== undefined) return own.get === AGENTS_ACCESSOR.get ? (object as AgentsRoot) : undefined;
  }
  return undefined;
}

const readOnly = () => new TypeError("Cannot assign to read only property 'agents' of object");

// Shared by every copy (no closure per copy): `this` is the copy, or an object inheriting from it.
const AGENTS_ACCESSOR = {
  get(this: object): unknown {
    const owner = accessorOwner(this) as AgentsRoot;
    if (fixedAgents.has(owner)) return fixedAgents.get(owner);
    const agents = lazyAgents((owner[LAZY_AGENTS] as LazyAgentsSlot).source.toRecord());
    if (Object.getOwnPropertyDescriptor(owner, 'agents')?.configurable) setOwn(owner, 'agents', agents);
    else fixedAgents.set(owner, agents);
    return agents;
  },
  set(this: object, value: unknown): void {
    const owner = accessorOwner(this) as AgentsRoot;
    if (Object.isFrozen(owner)) throw readOnly();
    if (owner !== this) {
      if (!Object.isExtensible(this))
        throw new TypeError('Cannot add property agents, object is not extensible');
      // Not `setOwn`, whose assignment of a key `this` lacks would call this setter again.
      Object.defineProperty(this, 'agents', { value, enumerable: true, writable: true, configurable: true });
    } else if (Object.getOwnPropertyDescriptor(owner, 'agents')?.configurable) setOwn(owner, 'agents', value);
    else fixedAgents.set(owner, value);
  },
};

function defineLazyAgents(copy: AgentsRoot, source: CopySource['agents']): void {
  Object.defineProperty(copy, LAZY_AGENTS, { value: { source }, configurable: true });
  Object.defineProperty(copy, 'agents', { enumerable: true, configurable: true, ...AGENTS_ACCESSOR });
}

/**
 * The stored profiles `copy.agents` copies when that was neither read nor assigned since the copy
 * was made (then it equals them); undefined otherwise, or once `delete copy.agents` removed the
 * accessor (whatever is there since is the mutator's own).
 */
export function unreadAgents(copy: object): CopySource['agents'] | undefined {
  const slot = (copy as AgentsRoot)[LAZY_AGENTS];
  if (slot === undefined || fixedAgents.has(copy)) return undefined;
  return Object.getOwnPropertyDescriptor(copy, 'agents')?.get === AGENTS_ACCESSOR.get
    ? slot.source
    : undefined;
}

// ---- the copy --------------------------------------------------------------------------------

/** A working copy of `state` (see the top of this file). Key order is kept. */
export function workingCopy(state: CopySource): DashboardState {
  const copy: CopyRoot = {};
  for (const key of Object.keys(state)) {
    const value = state[key];
    if (value instanceof History) defineLazyHistory(copy, key as HistoryKey, value);
    else if (key === 'agents') defineLazyAgents(copy, state.agents);
    else setOwn(copy, key, cloneJson(value));
  }
  return copy as DashboardState;
}
