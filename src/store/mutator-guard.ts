/**
 * What keeps a write made from inside a mutator from waiting forever. A store runs one batch at a
 * time, and a mutator runs inside its batch: a write to the same store (or a `checkpoint()`, a
 * `close()`) that the mutator awaits waits for the batch, which waits for the mutator.
 *
 * Nothing tells a write made by the mutator from one made by another caller meanwhile
 * (AsyncLocalStorage would, but it slows every promise of the process), and one the mutator does
 * not await is harmless: it is written after. So such a wait is bounded instead: one that began
 * while a mutator ran fails with E_LOCK_TIMEOUT after `lockTimeoutMs` if that mutator still runs
 * then, as a waiter in another process would; the mutator then goes on with that error.
 */
export class MutatorGuard {
  /** Timers of the waits that began while the running mutator ran; cleared when it ends. */
  private readonly timers = new Set<NodeJS.Timeout>();
  private running = false;

  constructor(private readonly timeoutMs: number) {}

  /** Runs `mutate` on `state`, watching it as above. */
  async run<S>(mutate: (state: S) => void | Promise<void>, state: S): Promise<void> {
    this.running = true;
    try {
      await mutate(state);
    } finally {
      this.running = false;
      for (const timer of this.timers) clearTimeout(timer);
      this.timers.clear();
    }
  }

  /**
   * For a wait that begins now: calls `giveUp` after `lockTimeoutMs` if a mutator runs now and
   * still does then. Not unref'd: a process whose mutator awaits its own write ends with this
   * error, instead of exiting with the write silently never made.
   */
  bound(giveUp: () => void): void {
    if (!this.running) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      giveUp();
    }, this.timeoutMs);
    this.timers.add(timer);
  }
}
