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
 * Takeover of a dead holder's lock therefore costs at most one poll interval (MAX_POLL_MS).
 *
 * The lock file is never deleted: deleting it while someone waits on the old inode would let two
 * processes hold locks on two different inodes. If anyone else deletes it anyway, we detect that
 * the path no longer names our inode after locking, and start over.
 */

/** Longest pause between two attempts; bounds the takeover time of a dead holder's lock. */
export const MAX_POLL_MS = 25;
const FIRST_POLL_MS = 1;

const queues = new Map<string, Promise<void>>();

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

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

export interface LockOptions {
  timeoutMs: number;
  fileMode: number;
}

export class FileLock {
  constructor(
    private readonly fileSystem: FileSystem,
    readonly path: string,
    private readonly options: LockOptions,
  ) {}

  /** Runs `fn` while holding the lock; the lock is released however `fn` ends. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  private async acquire(): Promise<() => Promise<void>> {
    const deadline = Date.now() + this.options.timeoutMs;
    const previous = queues.get(this.path) ?? Promise.resolve();
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

    if (!(await settlesBefore(previous, deadline))) {
      // Keep our place in the chain until those before us are done, then pass it on at once.
      void previous.then(leaveQueue);
      throw new LockAcquisitionError(this.path, this.options.timeoutMs, await this.readHolderPid());
    }
    let fd: number;
    try {
      fd = await this.lockFile(deadline);
    } catch (error) {
      leaveQueue();
      throw error;
    }
    return async () => {
      // Closing the descriptor releases the flock. close() frees the descriptor even when it
      // reports an error, and the work done under the lock is already committed: failing here
      // would make callers retry a write that happened.
      await this.fileSystem.close(fd).catch(() => undefined);
      leaveQueue();
    };
  }

  private async lockFile(deadline: number): Promise<number> {
    let pause = FIRST_POLL_MS;
    for (;;) {
      const fd = await this.io('open', () =>
        this.fileSystem.open(this.path, 'read-write-create', this.options.fileMode),
      );
      let keep = false;
      try {
        const locked = await this.io('flock', () => this.fileSystem.tryLockExclusive(fd));
        if (locked && (await this.isStillAtPath(fd))) {
          await this.recordHolder(fd);
          keep = true;
          return fd;
        }
        if (Date.now() >= deadline) {
          throw new LockAcquisitionError(this.path, this.options.timeoutMs, await this.readHolderPid());
        }
      } finally {
        if (!keep) await this.fileSystem.close(fd).catch(() => undefined);
      }
      // Jitter keeps waiters from polling in lockstep; capped, since MAX_POLL_MS is the documented
      // takeover bound (the jitter alone used to stretch a pause to 1.5 × MAX_POLL_MS).
      const jittered = Math.min(pause * (0.5 + Math.random()), MAX_POLL_MS);
      await sleep(Math.min(jittered, Math.max(0, deadline - Date.now())));
      pause = Math.min(pause * 2, MAX_POLL_MS);
    }
  }

  /** False when someone deleted or replaced the lock file after we opened it. */
  private async isStillAtPath(fd: number): Promise<boolean> {
    const [mine, current] = await Promise.all([
      this.io('fstat', () => this.fileSystem.fstat(fd)),
      this.fileSystem.stat(this.path).catch((error: unknown) => {
        if (errnoCode(error) === 'ENOENT') return undefined;
        throw new StorageIOError('stat', this.path, error);
      }),
    ]);
    return current !== undefined && current.ino === mine.ino && current.dev === mine.dev;
  }

  /**
   * Writes our pid into the lock file so a timed-out waiter can say who holds the lock. Only for
   * messages: a full disk (ENOSPC, EDQUOT) must not cost us the lock we already hold.
   */
  private async recordHolder(fd: number): Promise<void> {
    try {
      await this.fileSystem.ftruncate(fd, 0);
      await this.fileSystem.write(fd, Buffer.from(`${process.pid}\n`), 0);
    } catch {
      // A stale or empty pid only makes a timeout message less precise.
    }
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
