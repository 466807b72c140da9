import { StateValidationError } from '../errors.js';
import { recordEvent } from '../model/record-event.js';
import { uncheckedProfileIssues, validateState } from '../model/schema.js';
import { applyFifoEviction, capsFor, createEmptyState, toTimestamp } from '../model/state.js';
import type { AgentEvent, DashboardState } from '../model/types.js';
import { asJson } from './as-json.js';
import type { MetricsBackend, StateMutator } from './backend.js';
import { MutatorGuard, type MutatorRun, origin } from './mutator-guard.js';

/**
 * A backend that keeps the state in memory, with the same contract as the file store (updates are
 * serialised, all-or-nothing, validated, stamped and FIFO-capped): for tests, for dry runs (the
 * CLI checks events against a scratch state before writing any), and as the reference the shared
 * backend contract tests hold every backend to. Nothing survives the process.
 */
export class MemoryBackend implements MetricsBackend {
  readonly projectName: string;
  private state: DashboardState;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly mutators = new MutatorGuard();

  /** Starts from a copy of `initial`, or from an empty state of the project named so. */
  constructor(initial: string | DashboardState) {
    this.state = typeof initial === 'string' ? createEmptyState(initial) : structuredClone(initial);
    this.projectName = this.state.project_name;
  }

  async load(): Promise<DashboardState> {
    return structuredClone(this.state);
  }

  update(mutate: StateMutator): Promise<DashboardState> {
    const from = origin();
    const refused = this.mutators.refusal('an update', from);
    if (refused) return Promise.reject(refused);
    const run = this.queue.then(() => this.apply(mutate, from));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async commit(mutate: StateMutator): Promise<void> {
    await this.update(mutate);
  }

  async recordEvent(event: AgentEvent): Promise<void> {
    await this.update((state) => recordEvent(state, event));
  }

  private async apply(mutate: StateMutator, from: MutatorRun | undefined): Promise<DashboardState> {
    const draft = structuredClone(this.state);
    await this.mutators.run(mutate, draft, from);
    // What the file store keeps is JSON: an undefined is dropped (or null in a list), NaN is null,
    // a Date its string, a Map `{}`; a BigInt or a cycle is refused. So is what this one keeps.
    const saved = JSON.parse(asJson(() => JSON.stringify(draft))) as DashboardState;
    const issues = [...validateState(saved), ...uncheckedProfileIssues(saved)];
    if (issues.length > 0) throw new StateValidationError(issues);
    const stamped = { ...saved, updated_at: toTimestamp(new Date()) };
    this.state = applyFifoEviction(stamped, capsFor(stamped));
    return structuredClone(this.state);
  }
}
