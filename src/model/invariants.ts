import type { ValidationIssue } from '../errors.js';
import { derivedMetricsOf, RECENT_EVENTS_KEPT } from './record-event.js';
import { formatPath, uncheckedProfileIssues } from './schema.js';
import { OPEN_SESSIONS_KEY } from './sessions.js';
import { capsFor } from './state.js';
import type { AgentEvent, AgentProfile, DashboardState } from './types.js';

/**
 * Invariants of a state that already matches the schema (`validateState` returns no issues):
 * what the schema cannot see, because it spans several fields or records. Pure: no I/O.
 */
export interface InvariantOptions {
  /**
   * Events the project keeps (the store's `maxEvents`); more is a problem.
   * @default the state's `retention`, else 500 (see `capsFor`)
   */
  maxEvents?: number;
  /**
   * Finished sessions the project keeps (the store's `maxSessions`); more is a problem.
   * @default the state's `retention`, else 50 (see `capsFor`)
   */
  maxSessions?: number;
}

// Sums of floats (cost, durations) are compared with a relative tolerance: the order of additions
// differs between writers (Python sums per event, a reader sums per agent).
function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

function sum<T>(items: Iterable<T>, of: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += of(item);
  return total;
}

type Report = (path: readonly PropertyKey[], message: string) => void;

function checkCaps(state: DashboardState, options: Required<InvariantOptions>, report: Report): void {
  if (state.events.length > options.maxEvents) {
    report(['events'], `holds ${state.events.length} events, more than the cap of ${options.maxEvents}`);
  }
  if (state.sessions.length > options.maxSessions) {
    report(
      ['sessions'],
      `holds ${state.sessions.length} sessions, more than the cap of ${options.maxSessions}`,
    );
  }
}

/** Reports every element whose `key(item)` was already seen, naming the first one. */
function checkUnique<T>(
  items: readonly T[],
  list: string,
  field: string,
  key: (item: T) => string | number,
  report: Report,
): void {
  const firstIndex = new Map<string | number, number>();
  items.forEach((item, index) => {
    const value = key(item);
    const first = firstIndex.get(value);
    if (first === undefined) firstIndex.set(value, index);
    else report([list, index, field], `duplicate of ${list}[${first}].${field} (${JSON.stringify(value)})`);
  });
}

function endsBeforeStart(item: { started_at: string; ended_at: string }): boolean {
  return item.ended_at !== '' && Date.parse(item.ended_at) < Date.parse(item.started_at);
}

function checkEvents(state: DashboardState, report: Report): void {
  checkUnique(state.events, 'events', 'event_id', (event) => event.event_id, report);
  state.events.forEach((event, index) => {
    const expected = event.input_tokens + event.output_tokens;
    if (event.total_tokens !== expected) {
      report(
        ['events', index, 'total_tokens'],
        `expected input_tokens + output_tokens = ${expected}, found ${event.total_tokens}`,
      );
    }
    if (endsBeforeStart(event)) report(['events', index, 'ended_at'], 'is earlier than started_at');
    if (!Object.hasOwn(state.agents, event.agent_name)) {
      report(['events', index, 'agent_name'], `no profile for ${JSON.stringify(event.agent_name)} in agents`);
    }
  });
}

interface SessionRef {
  list: string;
  index: number;
  session_id: unknown;
  session_number: unknown;
}

/** Finished sessions, then those in progress (the extra key the domain API keeps them in). */
function allSessions(state: DashboardState): SessionRef[] {
  const refs: SessionRef[] = state.sessions.map((session, index) => ({
    list: 'sessions',
    index,
    ...session,
  }));
  const open = state[OPEN_SESSIONS_KEY];
  if (Array.isArray(open)) {
    open.forEach((session: unknown, index) => {
      if (typeof session === 'object' && session !== null)
        refs.push({ ...(session as SessionRef), list: OPEN_SESSIONS_KEY, index });
    });
  }
  return refs;
}

function checkSessions(state: DashboardState, report: Report): void {
  const sessions = allSessions(state);
  for (const field of ['session_id', 'session_number'] as const) {
    const first = new Map<unknown, SessionRef>();
    for (const session of sessions) {
      const seen = first.get(session[field]);
      if (seen === undefined) first.set(session[field], session);
      else {
        report(
          [session.list, session.index, field],
          `duplicate of ${seen.list}[${seen.index}].${field} (${JSON.stringify(session[field])})`,
        );
      }
    }
  }
  state.sessions.forEach((session, index) => {
    if (endsBeforeStart(session)) report(['sessions', index, 'ended_at'], 'is earlier than started_at');
  });
  // total_sessions counts every session ever started (finished or not), and numbers them.
  const numbers = sessions.map((session) => session.session_number).filter((n) => typeof n === 'number');
  // Not `Math.max(0, ...numbers)`: a spread of ~125,000 numbers overflows the call stack.
  const highest = numbers.reduce((max, number) => Math.max(max, number), 0);
  if (state.total_sessions < sessions.length) {
    report(
      ['total_sessions'],
      `is ${state.total_sessions}, fewer than the ${sessions.length} sessions kept (finished and in progress)`,
    );
  } else if (state.total_sessions < highest) {
    report(
      ['total_sessions'],
      `is ${state.total_sessions}, less than the highest session_number (${highest})`,
    );
  }
}

/** What the kept events of one agent add up to. */
interface Kept {
  count: number;
  tokens: number;
}

/** Per agent name, counted in one pass (a pass per profile cost O(agents × events)). */
function keptPerAgent(events: readonly AgentEvent[]): Map<string, Kept> {
  const kept = new Map<string, Kept>();
  for (const event of events) {
    const sums = kept.get(event.agent_name) ?? { count: 0, tokens: 0 };
    sums.count += 1;
    sums.tokens += event.total_tokens;
    kept.set(event.agent_name, sums);
  }
  return kept;
}

function checkProfile(name: string, profile: AgentProfile, kept: Kept | undefined, report: Report): void {
  const at = (field: string) => ['agents', name, field];
  if (profile.agent_name !== name) {
    report(
      at('agent_name'),
      `is ${JSON.stringify(profile.agent_name)}, but the profile is stored under ${JSON.stringify(name)}`,
    );
  }
  if (profile.successful_invocations + profile.failed_invocations > profile.total_invocations) {
    report(
      at('total_invocations'),
      `is ${profile.total_invocations}, less than successful_invocations + failed_invocations (${profile.successful_invocations} + ${profile.failed_invocations})`,
    );
  }
  for (const [field, expected] of Object.entries(derivedMetricsOf(profile))) {
    const found = profile[field] as number;
    if (!close(found, expected)) report(at(field), `expected ${expected} from the counters, found ${found}`);
  }
  if (profile.current_streak > profile.best_streak) {
    report(
      at('best_streak'),
      `is ${profile.best_streak}, less than current_streak (${profile.current_streak})`,
    );
  }
  if (profile.recent_events.length > RECENT_EVENTS_KEPT) {
    report(at('recent_events'), `holds ${profile.recent_events.length} ids, more than ${RECENT_EVENTS_KEPT}`);
  }
  // Counters are lifetime sums: never below what the events still kept add up to.
  const { count, tokens } = kept ?? { count: 0, tokens: 0 };
  if (profile.total_invocations < count) {
    report(
      at('total_invocations'),
      `is ${profile.total_invocations}, fewer than the ${count} events kept for this agent`,
    );
  }
  if (profile.total_tokens < tokens) {
    report(
      at('total_tokens'),
      `is ${profile.total_tokens}, less than the ${tokens} tokens of the events kept for this agent`,
    );
  }
}

function checkTotals(state: DashboardState, report: Report): void {
  const profiles = Object.values(state.agents);
  const tokens = sum(profiles, (profile) => profile.total_tokens);
  if (state.total_tokens !== tokens) {
    report(['total_tokens'], `expected the sum over agents (${tokens}), found ${state.total_tokens}`);
  }
  for (const field of ['total_cost_usd', 'total_duration_seconds'] as const) {
    const expected = sum(profiles, (profile) => profile[field]);
    if (!close(state[field], expected)) {
      report([field], `expected the sum over agents (${expected}), found ${state[field]}`);
    }
  }
  const sessionTokens = sum(state.sessions, (session) => session.total_tokens);
  if (sessionTokens > state.total_tokens) {
    report(
      ['total_tokens'],
      `is ${state.total_tokens}, less than the ${sessionTokens} tokens of the sessions kept`,
    );
  }
}

/**
 * Every broken invariant of `state`, each with its path (`agents.coding.success_rate`) and what
 * was expected. Empty when consistent. Call on a state that passed `validateState`.
 */
export function checkInvariants(state: DashboardState, options: InvariantOptions = {}): ValidationIssue[] {
  // Profiles `validateState` does not check: the checks below read every profile.
  const unchecked = uncheckedProfileIssues(state);
  if (unchecked.length > 0) return unchecked;
  const resolved = capsFor(state, options);
  const issues: ValidationIssue[] = [];
  const report: Report = (path, message) => issues.push({ path: formatPath(path), message });
  checkCaps(state, resolved, report);
  checkEvents(state, report);
  checkSessions(state, report);
  const kept = keptPerAgent(state.events);
  for (const [name, profile] of Object.entries(state.agents))
    checkProfile(name, profile, kept.get(name), report);
  checkTotals(state, report);
  return issues;
}
