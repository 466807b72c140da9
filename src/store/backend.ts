import type { AgentEvent, DashboardState } from '../model/types.js';

/** Changes a state in place; may be async. Runs under the backend's lock. */
export type StateMutator = (state: DashboardState) => void | Promise<void>;

/**
 * What the domain layer needs from persistence. The JSON file store implements it; other
 * backends (a database for agents on many machines) implement the same two calls and run the
 * same contract tests.
 */
export interface MetricsBackend {
  readonly projectName: string;
  /** The current state (never an empty state because of a busy lock). */
  load(): Promise<DashboardState>;
  /** Atomic, durable read-modify-write; returns the state as saved. */
  update(mutate: StateMutator): Promise<DashboardState>;
  /**
   * The same write as `update`, resolving to nothing: for callers that do not read the state
   * back, which spares making the copy `update` returns. Optional: `AgentMetrics` calls
   * `update` on a backend without it.
   */
  commit?(mutate: StateMutator): Promise<void>;
  /**
   * Records one complete, valid event as `recordEvent` (model/record-event.ts) changes the state,
   * in one atomic, durable write, as `commit((state) => recordEvent(state, event))` would (what
   * `AgentMetrics` calls on a backend without it). The file store journals it as the operation.
   */
  recordEvent?(event: AgentEvent): Promise<void>;
  /** Finishes background work (the file store folds its journal into the JSON file). Optional. */
  close?(): Promise<void>;
}
