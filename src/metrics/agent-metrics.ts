import { randomUUID } from 'node:crypto';
import { errnoCode, MetricsError } from '../errors.js';
import { recordEvent } from '../model/record-event.js';
import {
  endSession,
  type OpenSession,
  openSessionsOf,
  setAsideMalformedOpenSessions,
  startSession,
} from '../model/sessions.js';
import type {
  AgentEvent,
  AgentProfile,
  DashboardState,
  SessionStatus,
  SessionSummary,
} from '../model/types.js';
import { callSafely } from '../safe-call.js';
import type { MetricsBackend, StateMutator } from '../store/backend.js';
import { buildEvent } from './build-event.js';
import {
  type EndSessionInput,
  type EventInput,
  endSessionSchema,
  parseInput,
  type SessionInput,
  sessionInputSchema,
  storableIso,
  toIso,
  trackContextSchema,
} from './inputs.js';
import {
  type AgentMetricsOptions,
  type ResolvedAgentMetricsOptions,
  resolveAgentMetricsOptions,
} from './options.js';
import { AgentTracker } from './tracker.js';

/** What `trackAgent` needs before the work starts; tokens, artifacts and status come from the tracker. */
export type TrackContext = Pick<EventInput, 'agentName' | 'sessionId' | 'ticketKey' | 'model' | 'artifacts'>;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// An errno code (`ENOSPC`, `ECONNRESET`, `EAI_AGAIN`), not one of Node's `ERR_…` codes of misuse.
const ERRNO_CODE = /^E(?!RR_)[A-Z0-9_]+$/;

/**
 * Every failure reaches `onError` as a `MetricsError`. One that is not coded yet (from a custom
 * backend, or a bug) is wrapped, the original as `cause`: as E_IO only when it is an errno-style
 * error; anything else (a TypeError, …) is E_INTERNAL, so that a bug is not reported as I/O.
 */
function asMetricsError(error: unknown): MetricsError {
  if (error instanceof MetricsError) return error;
  const reason = messageOf(error);
  if (ERRNO_CODE.test(errnoCode(error) ?? '')) {
    return new MetricsError('E_IO', `recording failed: ${reason}`, { cause: error });
  }
  return new MetricsError('E_INTERNAL', `recording failed on an unexpected error: ${reason}`, {
    cause: error,
  });
}

/**
 * The domain API an orchestrator's session loop calls. Every recording (`startSession`,
 * `recordEvent`, `endSession`, and the event of `trackAgent`) is one atomic, durable
 * backend write (`backend.update()`, or `commit()` when it has one; an event through the
 * backend's `recordEvent()` when it has one), so any number of processes can record into one
 * project at once.
 *
 * Recording calls never throw unless `strict` is set: failures go to `onError`. Reads
 * (`getState`, `getAgentProfile`, `getLeaderboard`, `getOpenSessions`) always throw on failure,
 * since they have nothing sensible to return instead.
 */
export class AgentMetrics {
  /** Where the state is kept (a `MetricsStore` unless you passed another backend as `store`). */
  readonly backend: MetricsBackend;
  private readonly options: ResolvedAgentMetricsOptions;

  constructor(options: AgentMetricsOptions) {
    this.options = resolveAgentMetricsOptions(options);
    this.backend = this.options.backend;
  }

  get projectName(): string {
    return this.backend.projectName;
  }

  /**
   * Starts a session and persists it at once (in the root key `sessions_in_progress`), with the
   * next session number. Resolves to its id — also when recording failed and `strict` is false:
   * the loop can go on, its events are still recorded, and `endSession` will report the session
   * as unknown through `onError`. A malformed `sessions_in_progress` (not a list of sessions in
   * progress) does not block sessions: `startSession` and `endSession` move it aside to
   * `sessions_in_progress_corrupt_<UTC timestamp>`, start over with an empty list, and report it
   * to `onError` (E_INVALID_STATE naming the bad paths) — the call itself succeeds.
   */
  async startSession(input: SessionInput = {}): Promise<string> {
    // Chosen before validation, so that even a failed start has an id to hand back.
    const given = (input as { sessionId?: unknown } | null)?.sessionId;
    const sessionId = typeof given === 'string' && given !== '' ? given : randomUUID();
    return this.guard(sessionId, async () => {
      const parsed = parseInput(sessionInputSchema, input);
      const startedAt =
        parsed.startedAt === undefined
          ? storableIso(this.options.clock(), 'startedAt')
          : toIso(parsed.startedAt);
      let setAside: MetricsError | undefined;
      await this.write((state) => {
        setAside = setAsideMalformedOpenSessions(state, this.options.clock());
        startSession(state, {
          sessionId,
          type: parsed.type ?? 'continuation',
          startedAt,
          maxOpenSessions: this.options.maxOpenSessions,
        });
      });
      this.reportRepair(setAside);
      return sessionId;
    });
  }

  /**
   * Records one agent invocation in one atomic update: the event, the agent's profile, the root
   * totals and the running totals of its session (see `recordEvent` in `model/record-event.ts`).
   * An event may name no session, or one that is not in progress (hooks often know none): it is
   * then recorded everywhere but in a session's totals. Resolves to the stored event (file
   * format), or to `undefined` when recording failed and `strict` is false. Invalid input is
   * rejected before anything is written.
   */
  async recordEvent(input: EventInput): Promise<AgentEvent | undefined> {
    return this.guard(undefined, () => this.recordUnguarded(input));
  }

  private async recordUnguarded(input: EventInput): Promise<AgentEvent> {
    const event = buildEvent(input, this.options.clock(), this.options);
    if (this.backend.recordEvent) await this.backend.recordEvent(event);
    else await this.write((state) => recordEvent(state, event));
    return event;
  }

  /**
   * Ends a session in progress: it moves into `sessions` with its totals. Ending an unknown
   * session fails with E_NOT_FOUND, an ended one with E_CONFLICT while it is still among the
   * kept `sessions`; once evicted from them (FIFO, `maxSessions`) it is E_NOT_FOUND, since no
   * ended id is kept beyond them (the file stays bounded), and `startSession` accepts its id again.
   * Resolves to the summary, or to `undefined` when that failed and `strict` is false.
   */
  async endSession(
    sessionId: string,
    status: SessionStatus = 'complete',
    input: EndSessionInput = {},
  ): Promise<SessionSummary | undefined> {
    return this.guard(undefined, async () => {
      const parsed = parseInput(endSessionSchema, { ...input, sessionId, status });
      const endedAt =
        parsed.endedAt === undefined ? storableIso(this.options.clock(), 'endedAt') : toIso(parsed.endedAt);
      let summary: SessionSummary | undefined;
      let setAside: MetricsError | undefined;
      await this.write((state) => {
        setAside = setAsideMalformedOpenSessions(state, this.options.clock());
        summary = endSession(state, parsed.sessionId, parsed.status, endedAt, parsed.endedAt !== undefined);
      });
      this.reportRepair(setAside);
      return summary;
    });
  }

  /**
   * Runs `work` and records it as one event when it settles: `success` with its tokens and
   * artifacts when it returns, `error` with the thrown message when it throws (the error is then
   * re-thrown, whatever `strict` says: it is the agent's error, not a metrics failure). The
   * duration is measured. Resolves to what `work` returned. With `strict`, a recording failure
   * after a successful `work` is thrown; after a failed one it goes to `onError`, and the
   * agent's error is thrown. Without `strict`, every recording failure (a bad `clock` too) goes
   * to `onError`, and the call resolves or rejects exactly as `work` did.
   */
  async trackAgent<T>(context: TrackContext, work: (tracker: AgentTracker) => T | Promise<T>): Promise<T> {
    let startedAt: Date;
    try {
      parseInput(trackContextSchema, context);
      startedAt = this.options.clock();
    } catch (error) {
      // Nothing can be recorded; the work still runs unless the caller asked for strictness.
      if (this.options.strict) throw asMetricsError(error);
      this.report(asMetricsError(error));
      return work(new AgentTracker());
    }
    const tracker = new AgentTracker();
    // Guarded as a whole, the clock's second reading included: whatever fails there is a
    // recording failure (thrown only under `strict`), never in place of the work's own outcome.
    const record = (status: AgentEvent['status'], errorMessage: string) =>
      this.guard(undefined, () => {
        // A wall clock set back meanwhile gives a zero duration, not an event that ends before it
        // starts. The end is given: both times are this clock's, so no skew rule applies.
        const durationMs = Math.max(0, this.options.clock().getTime() - startedAt.getTime());
        return this.recordUnguarded({
          ...context,
          status,
          errorMessage,
          inputTokens: tracker.inputTokens,
          outputTokens: tracker.outputTokens,
          artifacts: [...(context.artifacts ?? []), ...tracker.artifacts],
          startedAt,
          endedAt: new Date(startedAt.getTime() + durationMs),
        });
      });
    let result: T;
    try {
      result = await work(tracker);
    } catch (error) {
      const status = tracker.status !== undefined && tracker.status !== 'success' ? tracker.status : 'error';
      await record(status, tracker.errorMessage || messageOf(error)).catch((failure: unknown) =>
        this.report(asMetricsError(failure)),
      );
      throw error;
    }
    await record(tracker.status ?? 'success', tracker.errorMessage);
    return result;
  }

  /** The whole current state (file format). */
  async getState(): Promise<DashboardState> {
    return this.backend.load();
  }

  /** The agent's lifetime profile, or `undefined` for an agent never recorded. */
  async getAgentProfile(agentName: string): Promise<AgentProfile | undefined> {
    const { agents } = await this.backend.load();
    return Object.hasOwn(agents, agentName) ? agents[agentName] : undefined;
  }

  /**
   * Every agent's profile, best first: most successful invocations, then highest success rate,
   * then fewest tokens per call, then by name.
   */
  async getLeaderboard(): Promise<AgentProfile[]> {
    const { agents } = await this.backend.load();
    return Object.values(agents).sort(
      (a, b) =>
        b.successful_invocations - a.successful_invocations ||
        b.success_rate - a.success_rate ||
        a.avg_tokens_per_call - b.avg_tokens_per_call ||
        a.agent_name.localeCompare(b.agent_name),
    );
  }

  /** Sessions started and not yet ended, oldest first. */
  async getOpenSessions(): Promise<OpenSession[]> {
    return openSessionsOf(await this.backend.load());
  }

  /**
   * Finishes the backend's background work: the file store waits for pending writes and folds
   * its journal into `.agent_metrics.json`, so that readers of that file alone are up to date.
   * Recording may go on afterwards. Throws on failure (nothing recorded is lost by that).
   */
  async close(): Promise<void> {
    await this.backend.close?.();
  }

  /** One atomic write; `commit` when the backend has it, since the state it returns goes unread. */
  private async write(mutate: StateMutator): Promise<void> {
    if (this.backend.commit) await this.backend.commit(mutate);
    else await this.backend.update(mutate);
  }

  /** Runs a recording; on failure throws (strict) or reports and resolves to `fallback`. */
  private async guard<T>(fallback: T, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      const failure = asMetricsError(error);
      if (this.options.strict) throw failure;
      this.report(failure);
      return fallback;
    }
  }

  /**
   * A repair made by a successful recording (a malformed `sessions_in_progress` set aside) is not
   * a failure of the call: it goes to `onError`, whatever `strict` says, and the call succeeds.
   */
  private reportRepair(repair: MetricsError | undefined): void {
    if (repair !== undefined) this.report(repair);
  }

  private report(error: MetricsError): void {
    // A failing error callback, sync or async, must not turn a tolerated failure into a crash.
    callSafely(this.options.onError, error);
  }
}
