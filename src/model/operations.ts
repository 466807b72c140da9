import { addEvent } from './record-event.js';
import { OPEN_SESSIONS_KEY, recordedInOpenSession } from './sessions.js';
import { RETENTION_KEY } from './state.js';
import { applyPatch, type StatePatch, type StoredState } from './state-patch.js';
import type { AgentEvent, AgentProfile, DashboardState } from './types.js';
import { isPlainObject, setOwn } from './working-copy.js';

/**
 * A change the journal holds as the operation that made it, not as the values it changed:
 * recording an event is the one write agents make all day, and as an operation its line is the
 * event and a few values (~0.6 KB instead of the ~1.4 KB patch), and the writer skips the working
 * copy, the diff and the patch's JSON round trip. Replay runs the same pure function
 * (`recordEvent`, model/record-event.ts) on the same state, so writer and readers agree exactly.
 * What an operation means is fixed by the journal format that holds it (format 3): a later
 * version that changes `recordEvent` keeps replaying format 3 operations the format 3 way.
 */
export interface RecordEventOperation {
  op: 'record_event';
  /** The event, complete and validated (`buildEvent`). */
  event: AgentEvent;
  /** The `updated_at` the writer set. */
  at: string;
  /** The FIFO caps the writer applied after the change; replay applies the same. */
  caps: { max_events: number; max_sessions: number };
  /** The root `retention` key the writer set (a store with explicit caps), if any. */
  retention?: { max_events: number; max_sessions: number };
}

/** What one journal line holds: the values a change set (a patch), or the operation that made it. */
export type JournalChange = StatePatch | RecordEventOperation;

export function isOperation(change: JournalChange): change is RecordEventOperation {
  return (change as { op?: unknown }).op !== undefined;
}

/**
 * A copy of `event` that is exactly what `JSON.parse(JSON.stringify(event))` gives back, when
 * `event` is a plain record: an object or array of the built-in kind whose values are strings,
 * booleans, null, finite numbers other than -0, or arrays of these. Else undefined (then the
 * caller takes the JSON round trip). Each value is read once, so the copy, and the line written
 * from it, cannot differ however the value was made (a getter).
 *
 * Why: the store computes what an operation leads to from the operation as replay reads it back,
 * and parsing back the line's JSON was ~7 % of the CPU of a recorded event with 64 callers (A/B
 * in the message of the commit that added this). The events `buildEvent` makes are all plain.
 */
export function plainEventCopy(event: AgentEvent): AgentEvent | undefined {
  try {
    // A `toJSON` JSON.stringify would call, even one Object.keys does not list.
    if (!isPlainObject(event) || (event as { toJSON?: unknown }).toJSON !== undefined) return undefined;
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(event)) {
      // A key Object.prototype has (`toString`, or one a library put there, with a setter or
      // read-only): an assignment would not make it an own value, as JSON.parse does.
      if (key !== '__proto__' && key in copy) return undefined;
      const value = event[key];
      let kept: unknown = value;
      if (Array.isArray(value)) {
        kept = plainListCopy(value);
        if (kept === undefined) return undefined;
      } else if (!isPlainScalar(value)) {
        return undefined;
      }
      setOwn(copy, key, kept);
    }
    // One put on Object.prototype, which the copy has and a null-prototype event has not.
    return (copy as { toJSON?: unknown }).toJSON === undefined ? (copy as AgentEvent) : undefined;
  } catch {
    // A getter or a Proxy that throws: the round trip meets it again and reports it (E_INVALID_STATE).
    return undefined;
  }
}

function plainListCopy(list: unknown[]): unknown[] | undefined {
  if (
    Object.getPrototypeOf(list) !== Array.prototype ||
    (list as { toJSON?: unknown }).toJSON !== undefined
  ) {
    return undefined;
  }
  const length = list.length;
  const copy = new Array<unknown>(length);
  for (let index = 0; index < length; index++) {
    // A hole reads as undefined, which JSON writes as null: not a plain list.
    const item = list[index];
    if (!isPlainScalar(item)) return undefined;
    copy[index] = item;
  }
  return copy;
}

/** A value JSON writes and reads back as the same value (NaN and ±Infinity become null, -0 becomes 0). */
function isPlainScalar(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    default:
      return value === null;
  }
}

/**
 * The patch recording `operation.event` makes to `state`: what `recordEvent` does to a working
 * copy of `state`, computed on copies of the few values it touches (the agent's profile, the root
 * totals, and the open sessions when the event's session is one of them) instead of diffed.
 */
export function recordEventPatch(state: StoredState, operation: RecordEventOperation): StatePatch {
  const { event } = operation;
  const name = event.agent_name;
  const agents: Record<string, AgentProfile> = {};
  // A shallow copy is enough: recording sets the profile's values, and replaces its one list that
  // changes (`recent_events`) instead of changing it in place. (A deep copy was 5 % of the CPU
  // with 64 callers; the property test checks that the stored state is never changed in place.)
  const stored = state.agents.get(name);
  if (stored !== undefined) setOwn(agents, name, { ...stored });
  // The scratch has no open sessions, so recording adds to none; the session the event adds to
  // is found and added to here (`recordedInOpenSession`: on a copy of that session, in a new list
  // sharing the others), as the last step of `recordEvent` would. Without `recordEvent`'s check
  // of the token totals: replay must not fail, and the writer checks the patch
  // (`recordedChange` in store/metrics-store.ts).
  const scratch = {
    agents,
    events: [] as AgentEvent[],
    total_tokens: state.total_tokens,
    total_cost_usd: state.total_cost_usd,
    total_duration_seconds: state.total_duration_seconds,
  } as unknown as DashboardState;
  addEvent(scratch, event, undefined);

  const set: Record<string, unknown> = {
    total_tokens: scratch.total_tokens,
    total_cost_usd: scratch.total_cost_usd,
    total_duration_seconds: scratch.total_duration_seconds,
    updated_at: operation.at,
  };
  const open = recordedInOpenSession(state, event);
  if (open !== undefined) set[OPEN_SESSIONS_KEY] = open;
  if (operation.retention !== undefined) set[RETENTION_KEY] = operation.retention;
  const profile: Record<string, AgentProfile> = {};
  setOwn(profile, name, scratch.agents[name]);
  return { set, agents: profile, events: scratch.events, caps: operation.caps };
}

/**
 * The values of `next` that are not those of `previous` (compared with ===: a list that was
 * replaced counts as changed), as what a profile's change needs validated: the rest was
 * validated when it was written.
 */
export function changedValues(previous: object, next: object): Record<string, unknown> {
  const changed: Record<string, unknown> = {};
  for (const key of Object.keys(next)) {
    const value = (next as Record<string, unknown>)[key];
    if (!Object.hasOwn(previous, key) || (previous as Record<string, unknown>)[key] !== value) {
      setOwn(changed, key, value);
    }
  }
  return changed;
}

/** `state` with `change` applied (see `applyPatch`): a new state, `state` is not modified. */
export function applyChange(state: StoredState, change: JournalChange): StoredState {
  return applyPatch(state, isOperation(change) ? recordEventPatch(state, change) : change);
}
