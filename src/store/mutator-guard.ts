import { AsyncLocalStorage } from 'node:async_hooks';
import { MetricsError } from '../errors.js';

/**
 * Sees a call on a store (or backend) made from inside one of its own mutators. A store runs one
 * batch at a time and a mutator runs inside its batch, so a write to the same store (or a
 * `save()`, `checkpoint()`, `close()`) that the mutator awaits waits for the batch, which waits
 * for the mutator: forever. Such a call fails at once with E_CONFLICT instead; so does one made
 * from a mutator that the first one started (store A's mutator calls B.update(fn), and `fn` calls
 * A): each run of a mutator knows the run that queued its update (`origin`).
 *
 * What tells where a call comes from: an AsyncLocalStorage that every mutator runs in, so that the
 * code it runs, and the promises it makes, carry its run: after an `await` in an `async function`,
 * in an async helper that a plain function returns the promise of, in an `async` function compiled
 * to a generator, through a wrapper. It is on only while a mutator runs: while it is on, every
 * promise of the process costs more (~0.15 µs per `await` on this machine), and
 * `MetricsStore.recordEvent`, the hot path, runs no mutator.
 * Carried too far, and so refused though it would only wait: a call from someone else's code that
 * the mutator's awaited work runs (the next task of a queue shared with other callers, a listener
 * of an event it emits); and a call coming back from something the mutator only started (a write
 * it fired, a timer) while it still runs (nothing tells whether it waits for it).
 * Not seen, and so still waiting forever: two callers whose mutators each await the other's store
 * (A's awaits B, B's awaits A: neither was queued from the other); a chain through a mutator that
 * has ended (A's mutator awaits an update that B's mutator fired before it ended, and that
 * update's mutator calls A); a callback the mutator registers on something made outside it (an
 * emitter), which runs in that thing's context; two stores on one folder (a guard each).
 * Not refused: calls made from a mutator that has ended (a task it left running).
 */
export class MutatorGuard {
  /**
   * Runs `mutate` on `state` as a run of this guard queued from `origin` (see `origin()`), so that
   * `refusal` sees calls made from it; returns what it returns (no promise of its own for a plain
   * mutator, whose caller awaits it as before).
   */
  run<S>(
    mutate: (state: S) => void | Promise<void>,
    state: S,
    origin: MutatorRun | undefined,
  ): void | Promise<void> {
    const run: MutatorRun = { guard: this, running: true, origin };
    runs++;
    let pending: Promise<void> | undefined;
    try {
      const result = currentRun.run(run, mutate, state);
      // A promise it returns is awaited by its batch: until it settles, the run still waits for
      // what it started (a call back into this store from there is seen).
      if (!isPromiseLike(result)) return result;
      pending = Promise.resolve(result);
    } finally {
      // Ended unless a promise is pending, whatever was thrown (even by a `then` getter).
      if (pending === undefined) end(run);
    }
    return pending.finally(() => end(run));
  }

  /**
   * E_CONFLICT naming `what` when called from inside a mutator this guard runs, or from one that
   * such a mutator awaits (see above); `from` is `origin()` at the call.
   */
  refusal(what: string, from: MutatorRun | undefined = origin()): MetricsError | undefined {
    // Up to the first run that has ended: it waits for nothing, so nothing before it can wait
    // for this call through it (and an ended run's origin is cleared).
    for (let run = from; run?.running; run = run.origin) {
      if (run.guard === this) return nestedCallError(what);
    }
    return undefined;
  }
}

/** A run of a mutator, and the run that queued its update, if any. */
export interface MutatorRun {
  readonly guard: MutatorGuard;
  running: boolean;
  /** Cleared when the run ends: chains of runs queued from one another stay short. */
  origin: MutatorRun | undefined;
}

/** The mutator run that code running now was called from, if any: to pass to `run`. */
export function origin(): MutatorRun | undefined {
  return runs === 0 ? undefined : currentRun.getStore();
}

/**
 * Calls `fn` outside of any mutator run: for a store's loop of batches, which the first write
 * starts and which serves later callers too; it must not carry that first caller's run.
 */
export function outsideRuns<T>(fn: () => T): T {
  return runs === 0 ? fn() : currentRun.exit(fn);
}

/** The mutator run that the current code was called from, if any. */
const currentRun = new AsyncLocalStorage<MutatorRun>();
/** Mutators running now, in this process. */
let runs = 0;

/** How many mutators run now, in this process (the AsyncLocalStorage is on while any does). */
export function mutatorsRunning(): number {
  return runs;
}

function end(run: MutatorRun): void {
  if (!run.running) return;
  run.running = false;
  run.origin = undefined;
  // Off again as soon as no mutator runs: see above.
  if (--runs === 0) currentRun.disable();
}

function isPromiseLike(value: unknown): value is PromiseLike<void> {
  return typeof (value as PromiseLike<void> | undefined)?.then === 'function';
}

function nestedCallError(what: string): MetricsError {
  return new MetricsError(
    'E_CONFLICT',
    `${what} from inside a mutator of the same store would wait for that mutator forever: make it once the update has resolved`,
  );
}
