import { errnoCode, StorageIOError } from '../errors.js';
import { type FileStat, type FileSystem, notAFile } from './file-system.js';
import { nulBytes } from './journal-format.js';

/** A journal file's identity: its inode. Appends change its contents, never its identity. */
export function inodeOf(stat: FileStat): string {
  return `${stat.dev}:${stat.ino}`;
}

async function io<T>(operation: string, path: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new StorageIOError(operation, path, error);
  }
}

/**
 * The bytes of `path` from `from` to its end (at most `length` of them), with the inode read;
 * undefined when it does not exist.
 */
export async function readFrom(
  fileSystem: FileSystem,
  path: string,
  from: number,
  length = Number.POSITIVE_INFINITY,
): Promise<{ data: Buffer; stat: FileStat } | undefined> {
  let fd: number;
  try {
    fd = await fileSystem.open(path, 'read');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw new StorageIOError('read', path, error);
  }
  try {
    const stat = await io('read', path, () => fileSystem.fstat(fd));
    const unreadable = notAFile(path, stat.mode);
    if (unreadable) throw new StorageIOError('read', path, unreadable);
    const data = await io('read', path, () =>
      fileSystem.read(fd, from, Math.max(0, Math.min(length, stat.size - from))),
    );
    return { data, stat };
  } finally {
    await fileSystem.close(fd).catch(() => undefined);
  }
}

export interface AppendOptions {
  /** Where the lines end now (the reserve may follow), as the caller found under the lock; the data goes there. */
  offset: number;
  /** The inode the caller read; a different file is an error, never appended to. */
  inode: string;
  /** Whether `syncWritten()` is to make these lines durable (fdatasync); false for durability 'none'. */
  sync: boolean;
}

/**
 * The journal's descriptor, kept open from one append to the next: opening and closing it per
 * append was ~10 % of the CPU of a recorded event. A descriptor names an inode, not a path, so it
 * is reopened whenever the caller's view of the journal names another inode (a checkpoint
 * replaced it), and closed by `close()` (the store does so when idle, and when it checkpoints).
 *
 * Writing and syncing are two steps so that the store can release the lock in between: the
 * fdatasync, about half of the time a writer held the lock, then overlaps with the next writer's
 * work (and the kernel merges the fdatasyncs of several processes into one journal commit).
 * A later writer that read our line answers its callers only after its own fdatasync, which
 * flushes ours too, so nothing is acknowledged on top of a line that is not on disk. (At a power
 * cut, a file system may keep a later unsynced line and not an earlier one: neither was
 * acknowledged; the README's write path says what a replay then does.)
 */
export class JournalAppender {
  private handle: { fd: number; inode: string } | undefined;
  /** Lines written and not yet fdatasynced: `close()` syncs them before closing their descriptor. */
  private unsynced: { fd: number; sync: Promise<void> | undefined } | undefined;
  /** fdatasyncs started and not finished: `close()` waits for them before closing a descriptor. */
  private readonly syncing = new Set<Promise<void>>();
  /** The last fdatasync started, settled either way: the next one starts after it. */
  private lastSync: Promise<void> = Promise.resolve();

  constructor(
    private readonly fileSystem: FileSystem,
    readonly path: string,
  ) {}

  /** True while an fdatasync started by `syncWritten()` or `close()` runs or waits its turn. */
  get syncInFlight(): boolean {
    return this.syncing.size > 0;
  }

  /**
   * Writes `data` at `offset` (under the lock). On failure it cuts the file back to `offset`, so a
   * change reported as failed never shows up later; the error's `committed` says whether that cut
   * failed (the lines may then be read back). With `sync`, `syncWritten()` must follow.
   */
  async write(data: Uint8Array, options: AppendOptions): Promise<void> {
    const fileSystem = this.fileSystem;
    const fd = await this.descriptorFor(options.inode);
    try {
      try {
        await fileSystem.write(fd, data, options.offset);
      } catch (error) {
        const cut = await fileSystem.ftruncate(fd, options.offset).then(
          () => true,
          () => false,
        );
        throw new StorageIOError('append to journal', this.path, error, !cut);
      }
    } catch (error) {
      // Whatever failed, the next append starts from a fresh descriptor.
      await this.close();
      throw error;
    }
    if (options.sync) this.unsynced = { fd, sync: undefined };
  }

  /**
   * Writes NUL bytes from `from` to `to` after the lines the last `write` wrote (the reserve, see
   * `JOURNAL_RESERVE_BYTES`), under the lock; the next fdatasync flushes them too. Best effort: a
   * disk too full for them still takes the lines, so on failure what part was written is cut off
   * again, back to `sizeBefore` or `from`, whichever is more. Resolves to where the reserve ends
   * now: `to`, or that size after a failure (the caller's next stat under the lock tells the
   * file's size in any case).
   */
  async layReserve(from: number, to: number, sizeBefore: number): Promise<number> {
    const kept = Math.max(from, sizeBefore);
    const fd = this.handle?.fd;
    if (fd === undefined) return kept;
    try {
      await this.fileSystem.write(fd, nulBytes(to - from), from);
      return to;
    } catch {
      await this.fileSystem.ftruncate(fd, kept).catch(() => undefined);
      return kept;
    }
  }

  /**
   * fdatasyncs what the last `write` wrote; once this resolves the lines are on disk. It may run
   * after the lock is released, so a failure cannot take the lines back (another process may
   * have built on them): the error is `committed` (visible, but may not survive a power cut).
   * With `background`, the fdatasync runs on the thread pool: the caller has work to do meanwhile.
   */
  async syncWritten(options: { background?: boolean } = {}): Promise<void> {
    const unsynced = this.unsynced;
    if (unsynced === undefined) return;
    try {
      await this.startSync(unsynced, options.background ?? false);
    } catch (error) {
      throw new StorageIOError('fdatasync journal', this.path, error, true);
    } finally {
      if (this.unsynced === unsynced) this.unsynced = undefined;
    }
  }

  /**
   * `length` bytes of the journal from `offset`, read through the kept descriptor when it names
   * `inode`; undefined when it does not. Under the lock, for the lines another process appended:
   * it saves `readFrom`'s open, fstat and close at every write that follows another process's.
   */
  async readKept(inode: string, offset: number, length: number): Promise<Buffer | undefined> {
    const handle = this.handle;
    if (handle?.inode !== inode) return undefined;
    return io('read', this.path, () => this.fileSystem.read(handle.fd, offset, length));
  }

  /**
   * Closes the kept descriptor, if any; the next append opens the journal again. Detached at
   * once, so that a write meanwhile opens its own; closed once no fdatasync runs on it.
   */
  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    // A writer may be about to sync lines written through this descriptor: the sync runs now,
    // and the writer's `syncWritten()` gets its result (a failure too), so `unsynced` stays.
    if (this.unsynced) void this.startSync(this.unsynced, false).catch(() => undefined);
    while (this.syncing.size > 0) await Promise.all(this.syncing);
    if (handle) await this.fileSystem.close(handle.fd).catch(() => undefined);
  }

  /**
   * The fdatasync of `unsynced`, started once (tracked in `syncing` until it settles), after the
   * one started before it. One at a time: Linux reports a writeback error to one fdatasync of an
   * open file only, so of two running at once, the one that was told might not be the one whose
   * lines were lost. Run in turn, each answers for every line written before it started.
   */
  private startSync(unsynced: { fd: number; sync: Promise<void> | undefined }, background: boolean) {
    if (unsynced.sync) return unsynced.sync;
    const sync = this.lastSync.then(() => this.fileSystem.fdatasync(unsynced.fd, { background }));
    unsynced.sync = sync;
    const settled: Promise<void> = sync
      .catch(() => undefined)
      .then(() => {
        this.syncing.delete(settled);
      });
    this.syncing.add(settled);
    this.lastSync = settled;
    return sync;
  }

  /**
   * The kept descriptor when it names `inode`, else a new one. Where its lines end is not checked
   * here: the caller reads what other processes appended under the lock just before appending
   * (a stat, then the bytes past its view), which is that check.
   */
  private async descriptorFor(inode: string): Promise<number> {
    if (this.handle?.inode === inode) return this.handle.fd;
    await this.close();
    const fd = await io('open journal', this.path, () => this.fileSystem.open(this.path, 'read-write'));
    try {
      const stat = await io('open journal', this.path, () => this.fileSystem.fstat(fd));
      if (inodeOf(stat) !== inode) {
        throw new StorageIOError(
          'append to journal',
          this.path,
          new Error('the journal was replaced behind the lock (by a process not holding it)'),
        );
      }
    } catch (error) {
      await this.fileSystem.close(fd).catch(() => undefined);
      throw error;
    }
    this.handle = { fd, inode };
    return fd;
  }
}

/** Cuts the torn end of an interrupted write off the journal, with the reserve after it (under the lock). */
export async function truncateDurably(
  fileSystem: FileSystem,
  path: string,
  length: number,
  sync: boolean,
): Promise<void> {
  const fd = await io('open journal', path, () => fileSystem.open(path, 'read-write'));
  try {
    await io('truncate journal', path, async () => {
      await fileSystem.ftruncate(fd, length);
      if (sync) await fileSystem.fdatasync(fd);
    });
  } finally {
    await fileSystem.close(fd).catch(() => undefined);
  }
}
