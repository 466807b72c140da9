import { errnoCode, LockAcquisitionError, StorageIOError } from '../errors.js';
import type { FileSystem } from './file-system.js';

/**
 * The store's lock: an in-process FIFO queue per lock file, then flock(2) on the lock file.
 *
 * Why flock and not a lock-file library: proper-lockfile and friends detect a dead holder by the
 * age of the lock (mtime), so takeover waits for a staleness timeout (seconds) and a slow but live
 * holder can be declared stale, giving two holders (proper-lockfile #121). With flock the kernel
 * releases the lock the moment its holder dies, even by SIGKILL, and never grants it twice. The
 * seed report says the Python implementation uses fcntl.flock: if on this same file (unchecked:
 * its source is not here), the two exclude each other.
 *
 * Why a blocking flock in libuv's thread pool rather than polling with LOCK_NB: under contention a
 * poller leaves the lock idle between a release and its next attempt; a waiter blocked in flock
 * is woken by the kernel as soon as the holder releases or dies. The cost is one thread-pool
 * thread (4 by default, shared with fs, dns and crypto) blocked per project this process is
 * waiting on, so a free lock is still taken with a non-blocking attempt first, and the in-process
 * queue lets only one wait per lock file be in the kernel at a time. A blocking flock cannot be
 * cancelled: a waiter that times out leaves it pending, keeps its place in the queue until it
 * ends, and then closes its descriptor, which gives the lock straight back if it was granted
 * meanwhile. Until then the process cannot exit, not even by process.exit(): libuv joins its
 * threads at exit (a signal's default action still ends it). So a process that must end on time
 * (the CLI) polls instead (`wait: 'poll'`), and marks the lock file so that a holder under a lease
 * still sees it waiting (see `pollUntil`).
 *
 * The descriptor of the lock file stays open between runs, and a run releases the lock with
 * flock(LOCK_UN): opening and closing the file for every run cost about 20 % of the CPU of one
 * recorded event. A free lock then costs a non-blocking flock, a stat of the path, the pid write
 * and the unlock. If the unlock fails, closing the descriptor releases the lock. `close()` closes
 * the descriptor (the store calls it when idle, so an idle process keeps no file open); the next
 * run opens the file again. Each FileLock has its own descriptor, so two of them on one path in
 * one process exclude each other through flock like two processes do.
 *
 * The lock file is never deleted: deleting it while someone waits on the old inode would let two
 * processes hold locks on two different inodes. If anyone else deletes or replaces it anyway, we
 * detect after locking that the path no longer names the inode we opened (fstat once, when
 * opening; stat of the path at every run), close the descriptor, and start over on the new file.
 */

/**
 * @deprecated Nothing uses it. A waiter blocks in flock(2) (the kernel hands the lock over when its
 * holder releases it or dies), or, with `lockWait: 'poll'`, pauses 1–16 ms between tries. Kept
 * only because the package exports it.
 */
export const MAX_POLL_MS = 25;

const queues = new Map<string, Promise<void>>();

/** Resolves true when `promise` settles before `deadline`, false otherwise. */
async function settlesBefore(promise: Promise<void>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * After a lease was given up to a waiting process: how often this one looks whether that process
 * took the lock yet, and how many times at most before it takes the lock again anyway (the waiter
 * may have died, or could not write its pid). A count, not a clock: ~50 ms.
 */
const YIELD_PAUSE_MS = 1;
const YIELD_MAX_LOOKS = 50;
/** How long no lease is kept after another process wanted the lock (see `contendedUntil`). */
const CONTENDED_MS = 1000;

/** Pids are written space-padded to this width (Linux pids have at most 7 digits). */
const PID_WIDTH = 10;
/** This process's pid as the lock file holds it (`recordHolder` writes it, `waitForTakeover` looks for it). */
const OWN_PID_FIELD = String(process.pid).padEnd(PID_WIDTH);
/**
 * The lock file's second line: `waiting` while a process polls for the lock (`wait: 'poll'`), blank
 * otherwise. A poller is not in /proc/locks, so a holder under a lease looks here too.
 */
const WAITING_OFFSET = PID_WIDTH + 1;
const WAITING_LINE = Buffer.from(`${'waiting'.padEnd(PID_WIDTH)}\n`, 'latin1');
const BLANK_LINE = Buffer.from(`${' '.repeat(PID_WIDTH)}\n`, 'latin1');
/** What a holder writes: its pid, and the waiting line cleared (a poller still waiting marks it again). */
const HOLDER_RECORD = Buffer.concat([Buffer.from(`${OWN_PID_FIELD}\n`, 'latin1'), BLANK_LINE]);
/** A poller's pauses between two tries: doubling from the first to the last. */
const POLL_FIRST_PAUSE_MS = 1;
const POLL_LAST_PAUSE_MS = 16;

export interface LockOptions {
  timeoutMs: number;
  fileMode: number;
  /**
   * The lease (see `FileLock`): how long this FileLock may keep the lock from one run to the next
   * while another process waits for it, in ms. 0 (the default) releases it after every run.
   */
  leaseMs?: number;
  /** How to wait for a lock another process holds; see `MetricsStoreOptions.lockWait`. */
  wait?: 'block' | 'poll';
}

/** A lock kept after a run, for the next run of the same FileLock (see `FileLock`). */
interface Lease {
  fd: number;
  /** This FileLock's place in the in-process queue, still held. */
  tail: Promise<void>;
  leaveQueue: () => void;
  /**
   * When the lock was granted, or the lease last renewed because nobody waited (performance.now():
   * a wall clock stepped back must not stretch a lease).
   */
  since: number;
}

/** The lock file as we opened it: what the path must still name once we hold the lock. */
interface LockHandle {
  fd: number;
  dev: number;
  ino: number;
}

export class FileLock {
  /** Kept open between runs; undefined until the first run, after close(), or after a failure. */
  private handle: LockHandle | undefined;
  private lease: Lease | undefined;
  /** Set by `keepUntil`: the lease lasts at least until this settles. */
  private keepFor: Promise<unknown> | undefined;
  /**
   * After giving the lock up: the next acquisition first waits until a process seen waiting took
   * it (`to-a-waiter`), or pauses when the file system could not tell whether anyone waits.
   */
  private yieldNext: 'to-a-waiter' | 'maybe' | undefined;
  /**
   * No lease before this time (performance.now()): another process wanted the lock lately. Processes
   * that take turns do better releasing after every run: their fdatasyncs overlap then, while
   * under a lease each waits for its own (8 processes: no gain from leases, measured).
   */
  private contendedUntil = 0;
  private granted = 0;
  /** From the start of an acquisition to its release: close() must not close the handle then. */
  private busy = false;
  private closeAtRelease = false;

  constructor(
    private readonly fileSystem: FileSystem,
    readonly path: string,
    private readonly options: LockOptions,
  ) {}

  /**
   * How many times flock has granted this FileLock the lock. While it stays the same, the lock
   * was held throughout (a lease): no other process can have changed what it guards.
   */
  get acquisitions(): number {
    return this.granted;
  }

  /**
   * With a lease, keeps the lock at least until `settled` settles (then until the event loop
   * turns), unless another process waits longer than the lease: for a write whose callers are
   * answered once its fdatasync is done, and may then write again at once.
   */
  keepUntil(settled: Promise<unknown>): void {
    this.keepFor = settled;
  }

  /** Runs `fn` while holding the lock; the lock is released however `fn` ends. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  /**
   * Closes the lock file's descriptor, at once or, while a run uses it, when that run releases the
   * lock. The lock stays usable: the next run opens the file again. Never fails.
   */
  async close(): Promise<void> {
    if (this.busy) {
      this.closeAtRelease = true;
      return;
    }
    await this.endLease();
    await this.dropHandle();
  }

  private async acquire(): Promise<() => Promise<void>> {
    // Only a holder awaits before joining the queue below: another acquirer joins it at once, so
    // that a run of the holder that comes later sees it queued and gives the lease up.
    if (this.lease) {
      const kept = await this.takeLease();
      if (kept) return kept;
    }
    const deadline = Date.now() + this.options.timeoutMs;
    const queued = queues.get(this.path);
    const previous = queued ?? Promise.resolve();
    let freeSlot!: () => void;
    const slot = new Promise<void>((resolve) => {
      freeSlot = resolve;
    });
    const tail = previous.then(() => slot);
    queues.set(this.path, tail);
    const leaveQueue = () => {
      freeSlot();
      if (queues.get(this.path) === tail) queues.delete(this.path);
    };

    // Nobody ahead in this process (the common case): no timer to arm.
    if (queued !== undefined && !(await settlesBefore(previous, deadline))) {
      // Keep our place in the chain until those before us are done, then pass it on at once.
      void previous.then(leaveQueue);
      throw await this.timedOut();
    }
    let fd: number;
    let waitAbandoned: Promise<void> | undefined;
    this.busy = true;
    const yielded = this.yieldNext;
    this.yieldNext = undefined;
    if (yielded === 'to-a-waiter') await this.waitForTakeover(deadline);
    // Someone may wait (the file system cannot tell): a pause, not a wait for a takeover that may
    // never come (a lone writer there gives its lease up about once a second).
    else if (yielded === 'maybe') await new Promise((resolve) => setTimeout(resolve, YIELD_PAUSE_MS));
    try {
      fd = await this.lockFile(deadline, (wait) => {
        waitAbandoned = wait;
      });
    } catch (error) {
      await this.settleClose();
      // An abandoned flock still blocks a thread-pool thread: the next in-process waiter must not
      // block a second one, so it waits in the queue until that flock has ended.
      if (waitAbandoned) void waitAbandoned.then(leaveQueue);
      else leaveQueue();
      throw error;
    }
    this.granted++;
    return this.releaser({ fd, tail, leaveQueue, since: performance.now() });
  }

  /** Ends a run: keeps the lock as a lease when it may (see `FileLock`), else releases it. */
  private releaser(held: Lease): () => Promise<void> {
    return async () => {
      // Set by this run, if at all: a later run does not inherit it.
      const keepFor = this.keepFor;
      this.keepFor = undefined;
      const leased =
        (this.options.leaseMs ?? 0) > 0 &&
        !this.closeAtRelease &&
        queues.get(this.path) === held.tail &&
        performance.now() >= this.contendedUntil;
      if (leased) {
        this.busy = false;
        this.lease = held;
        // Ended when the event loop turns with no run started meanwhile: after `keepFor`, or
        // after a lease's time if it takes longer (an fdatasync on a slow or hung disk must not
        // keep other processes out).
        const end = () => setImmediate(() => void (this.lease === held && this.endLease()));
        if (keepFor) {
          const timer = setTimeout(end, this.options.leaseMs);
          timer.unref();
          const settled = () => {
            clearTimeout(timer);
            end();
          };
          void keepFor.then(settled, settled);
        } else {
          end();
        }
        return;
      }
      await this.unlockAndLeave(held);
    };
  }

  /**
   * The lease as this run's lock, when nothing else in this process queued for it and no other
   * process has waited longer than `leaseMs`; else it ends the lease and resolves undefined.
   */
  private async takeLease(): Promise<(() => Promise<void>) | undefined> {
    const lease = this.lease;
    if (lease === undefined) return undefined;
    this.lease = undefined;
    // This run's from here, or given up below: a close() meanwhile waits for it (see `busy`).
    this.busy = true;
    const handle = this.handle;
    if (queues.get(this.path) === lease.tail && handle?.fd === lease.fd) {
      const now = performance.now();
      const expired = now - lease.since >= (this.options.leaseMs ?? 0);
      // Checked at every run, as when the lock is taken: a lock file that someone replaced
      // meanwhile locks nothing, and another process may hold the new one. (A stat that fails is
      // left to the acquisition below, which reports it.)
      const stillLocked = await this.isStillAtPath(handle).catch(() => false);
      if (stillLocked) {
        const waiting = expired ? await this.othersWait() : false;
        if (waiting === false) return this.releaser({ ...lease, since: expired ? now : lease.since });
        // Another process waited a whole lease (or may have): it goes first.
        this.yieldNext = waiting === true ? 'to-a-waiter' : 'maybe';
        this.contendedUntil = now + CONTENDED_MS;
      }
    }
    await this.unlockAndLeave(lease);
    return undefined;
  }

  /**
   * Whether another process waits for the lock: blocked in flock(2) (/proc/locks), or polling (the
   * lock file's waiting line); undefined when neither says so and /proc/locks cannot tell.
   */
  private async othersWait(): Promise<boolean | undefined> {
    const handle = this.handle;
    if (handle === undefined) return undefined;
    const line = await this.fileSystem
      .read(handle.fd, WAITING_OFFSET, WAITING_LINE.length)
      .catch(() => undefined);
    if (line?.equals(WAITING_LINE)) return true;
    if (this.fileSystem.flockWaiters === undefined) return undefined;
    return this.fileSystem.flockWaiters(handle.ino).catch(() => undefined);
  }

  /**
   * The lock was just given up to a process that waited a whole lease. flock(2) does not hand it
   * over: the kernel wakes the waiter, which takes the lock when it runs, and until then this
   * process could take it again at once (a fixed 1 ms pause was not always enough on a busy
   * machine: the test of this failed once in CI). So it waits until the lock file holds another
   * pid than ours (a holder writes its own once it has the lock: see `recordHolder`), which also
   * tells of a waiter that took the lock and gave it back between two looks. At most
   * YIELD_MAX_LOOKS looks, and not past the acquisition's deadline; a look that fails ends it.
   */
  private async waitForTakeover(deadline: number): Promise<void> {
    const fd = this.handle?.fd;
    for (let look = 0; look < YIELD_MAX_LOOKS && Date.now() < deadline; look++) {
      await new Promise((resolve) => setTimeout(resolve, YIELD_PAUSE_MS));
      if (fd === undefined) return;
      const pid = await this.fileSystem.read(fd, 0, PID_WIDTH).catch(() => undefined);
      if (pid?.toString('latin1') !== OWN_PID_FIELD) return;
    }
  }

  /** Releases a lease, if any (when the event loop turned with no run, and at close()). */
  private async endLease(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (lease) await this.unlockAndLeave(lease);
  }

  private async unlockAndLeave(held: Lease): Promise<void> {
    // The work done under the lock is already committed: failing here would make callers retry
    // a write that happened. A failed unlock may have left the lock held, so close the
    // descriptor, which releases it (close frees the descriptor even when it reports an error).
    try {
      await this.fileSystem.unlock(held.fd);
    } catch {
      await this.dropHandle();
    }
    await this.settleClose();
    held.leaveQueue();
  }

  /** Ends an acquisition (or a run): does what a close() during it deferred. */
  private async settleClose(): Promise<void> {
    this.busy = false;
    if (this.closeAtRelease) {
      this.closeAtRelease = false;
      await this.dropHandle();
    }
  }

  /** Forgets the kept descriptor and closes it (which also releases a lock held on it). */
  private async dropHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await this.fileSystem.close(handle.fd).catch(() => undefined);
  }

  /**
   * Flocks the lock file, opening it first unless it is still open from an earlier run. When it
   * gives up while a blocking flock is still pending, it passes `onAbandon` a promise that resolves
   * once that flock has ended and its descriptor is closed (never rejects).
   */
  private async lockFile(deadline: number, onAbandon: (wait: Promise<void>) => void): Promise<number> {
    for (;;) {
      const handle = this.handle ?? (await this.openHandle());
      try {
        // The non-blocking attempt first: a free lock then costs no thread-pool round trip.
        if (!(await this.io('flock', () => this.fileSystem.tryLockExclusive(handle.fd)))) {
          this.contendedUntil = performance.now() + CONTENDED_MS;
          if (this.options.wait === 'poll') await this.pollUntil(handle.fd, deadline);
          else await this.blockUntil(handle, deadline, onAbandon);
        }
        if (await this.isStillAtPath(handle)) {
          await this.recordHolder(handle.fd);
          return handle.fd;
        }
      } catch (error) {
        // Closing releases the flock if we got it; a descriptor that failed is not worth keeping.
        if (this.handle === handle) await this.dropHandle();
        throw error;
      }
      // Someone deleted or replaced the lock file since we opened it: its old inode locks nothing.
      await this.dropHandle();
      if (Date.now() >= deadline) {
        throw await this.timedOut();
      }
    }
  }

  /**
   * Waits in flock(2) on the thread pool until the lock is granted, or throws LockAcquisitionError
   * at `deadline`, leaving the flock pending (see `lockFile`'s `onAbandon`).
   */
  private async blockUntil(
    handle: LockHandle,
    deadline: number,
    onAbandon: (wait: Promise<void>) => void,
  ): Promise<void> {
    const wait = this.io('flock', () => this.fileSystem.lockExclusive(handle.fd));
    if (!(await settlesBefore(wait, deadline))) {
      // The descriptor now belongs to the pending flock: closing it under a running flock
      // could let the number be reused while the kernel still works on it.
      this.handle = undefined;
      const close = () => this.fileSystem.close(handle.fd);
      onAbandon(wait.then(close, close).catch(() => undefined));
      throw await this.timedOut();
    }
  }

  /**
   * Tries the lock without blocking, with pauses of 1 ms doubling up to 16 ms, until it is taken,
   * or throws LockAcquisitionError at `deadline`: nothing is left waiting then. Before each pause
   * it marks the lock file's waiting line, which a holder under a lease reads as a waiter
   * (`othersWait`), and the next holder clears (`recordHolder`).
   */
  private async pollUntil(fd: number, deadline: number): Promise<void> {
    let pause = POLL_FIRST_PAUSE_MS;
    let marked = false;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) {
        // Another poller's mark goes too; it marks the line again before its next pause.
        if (marked) await this.fileSystem.write(fd, BLANK_LINE, WAITING_OFFSET).catch(() => undefined);
        throw await this.timedOut();
      }
      // Only for the holder's lease: a mark that cannot be written (a full disk) costs a wait.
      await this.fileSystem.write(fd, WAITING_LINE, WAITING_OFFSET).catch(() => undefined);
      marked = true;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
      if (await this.io('flock', () => this.fileSystem.tryLockExclusive(fd))) return;
      pause = Math.min(pause * 2, POLL_LAST_PAUSE_MS);
    }
  }

  /** Opens the lock file and keeps it, with the identity of the inode it opened. */
  private async openHandle(): Promise<LockHandle> {
    const fd = await this.io('open', () =>
      this.fileSystem.open(this.path, 'read-write-create', this.options.fileMode),
    );
    try {
      const { dev, ino } = await this.io('fstat', () => this.fileSystem.fstat(fd));
      this.handle = { fd, dev, ino };
      return this.handle;
    } catch (error) {
      await this.fileSystem.close(fd).catch(() => undefined);
      throw error;
    }
  }

  /** False when someone deleted or replaced the lock file after we opened it. */
  private async isStillAtPath(handle: LockHandle): Promise<boolean> {
    const current = await this.fileSystem.stat(this.path).catch((error: unknown) => {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw new StorageIOError('stat', this.path, error);
    });
    return current !== undefined && current.ino === handle.ino && current.dev === handle.dev;
  }

  /**
   * Writes our pid into the lock file so a timed-out waiter can say who holds the lock. Only for
   * messages: a full disk (ENOSPC, EDQUOT) must not cost us the lock we already hold.
   */
  private async recordHolder(fd: number): Promise<void> {
    try {
      // Fixed width, written over the previous holder's: no ftruncate, which costs an ext4
      // journal transaction (~0.3 ms, the largest CPU cost of a recorded event when measured).
      await this.fileSystem.write(fd, HOLDER_RECORD, 0);
    } catch {
      // A stale or empty pid only makes a timeout message less precise.
    }
  }

  /** The error of a wait that reached its deadline, with the holder's pid when the file tells it. */
  private async timedOut(): Promise<LockAcquisitionError> {
    return new LockAcquisitionError(this.path, this.options.timeoutMs, await this.readHolderPid());
  }

  private async readHolderPid(): Promise<number | undefined> {
    try {
      const { data } = await this.fileSystem.readFile(this.path);
      const pid = Number.parseInt(data.toString('utf8'), 10);
      return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private async io<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw new StorageIOError(operation, this.path, error);
    }
  }
}
