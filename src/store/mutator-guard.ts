import { AsyncLocalStorage } from 'node:async_hooks';
import { MetricsError } from '../errors.js';

/**
 * Sees a write made from inside a mutator of the same store (or backend). A store runs one batch
 * at a time and a mutator runs inside its batch, so a write to the same store (or a
 * `checkpoint()`, a `close()`) that the mutator awaits waits for the batch, which waits for the
 * mutator: forever. Such a call fails at once with E_CONFLICT instead. What is seen:
 * - anything called during a mutator's synchronous part (a flag: only what it calls runs then);
 * - in an `async function` mutator, anything called after an `await` too, through an
 *   AsyncLocalStorage that runs only while such a mutator does: while it runs, every promise of
 *   the process costs more (~0.15 µs per `await` on this machine), so plain mutators, such as
 *   AgentMetrics' own, never turn it on.
 * Not seen: a plain function that returns a promise chain which writes later
 * (`(state) => later().then(() => store.update(…))`); that write still waits forever.
 * Writes made from a mutator that has ended (a task it left running) are not refused.
 */
export class MutatorGuard {
  private inSyncPart = false;

  /**
   * Runs `mutate` on `state`, so that `refusal` sees calls made from it; returns what it returns
   * (no promise of its own for a plain mutator, whose caller awaits it as before).
   */
  run<S>(mutate: (state: S) => void | Promise<void>, state: S): void | Promise<void> {
    if (mutate instanceof AsyncFunction) return this.runAsync(mutate, state);
    this.inSyncPart = true;
    try {
      return mutate(state);
    } finally {
      this.inSyncPart = false;
    }
  }

  private async runAsync<S>(mutate: (state: S) => void | Promise<void>, state: S): Promise<void> {
    const run: MutatorRun = { guard: this, running: true };
    asyncRuns++;
    try {
      await currentRun.run(run, () => mutate(state));
    } finally {
      run.running = false;
      // Off again as soon as no async mutator runs: see above.
      if (--asyncRuns === 0) currentRun.disable();
    }
  }

  /** E_CONFLICT naming `what` when called from inside a mutator this guard runs (see above). */
  refusal(what: string): MetricsError | undefined {
    return this.insideMutator() ? nestedCallError(what) : undefined;
  }

  private insideMutator(): boolean {
    if (this.inSyncPart) return true;
    if (asyncRuns === 0) return false;
    const run = currentRun.getStore();
    return run !== undefined && run.guard === this && run.running;
  }
}

const AsyncFunction = (async () => {}).constructor;

interface MutatorRun {
  readonly guard: MutatorGuard;
  running: boolean;
}

/** The async mutator run that the current code was called from, if any. */
const currentRun = new AsyncLocalStorage<MutatorRun>();
/** Async mutators running now, in this process. */
let asyncRuns = 0;

function nestedCallError(what: string): MetricsError {
  return new MetricsError(
    'E_CONFLICT',
    `${what} from inside a mutator of the same store would wait for that mutator forever: make it once the update has resolved`,
  );
}
