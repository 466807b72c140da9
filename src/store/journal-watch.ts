import { constants } from 'node:fs';
import type { FileStat, FileSystem } from './file-system.js';
import { inodeOf } from './journal-file.js';

/**
 * A directory's stamp that no later change of its entries leaves as it was: its ctime changes
 * when a file in it is created, renamed or deleted (a journal replaced by a rename, a checkpoint),
 * and no program can set the ctime back (rsync, `cp -a`, tar and `touch -r` set mtimes back).
 * Undefined without a ctime.
 */
function stampOf(stat: FileStat): string | undefined {
  if (stat.ctimeMs === undefined) return undefined;
  return `${stat.dev}:${stat.ino}:${stat.mtimeMs}:${stat.ctimeMs}`;
}

/**
 * When a directory's stamp can be trusted (`Date.now()`): a change within the same tick of the
 * file system's clock can leave its times as they were. Linux stamps in clock ticks (≤ 10 ms); a
 * file system that stamps in whole seconds (ext3, FAT: 2 s) shows whole-second times.
 */
export function settlesAt(stat: FileStat): number {
  const changed = Math.max(stat.mtimeMs, stat.ctimeMs ?? Number.POSITIVE_INFINITY);
  return changed + (changed % 1000 === 0 ? 3000 : 50);
}

/** How long the directory's stamp alone is trusted before the journal is stat-ed again (ms). */
const TRUST_MS = 1000;

/**
 * The outcome of `JournalWatch.check`: the directory's stat, when it took one, and `written` when
 * the bytes at the view's end show that someone wrote there (then read what they wrote).
 */
export type WatchOutcome = { untouched: true } | { untouched: false; dirStat?: FileStat; written?: boolean };

/**
 * Under a lease: whether the journal is still the file, with the lines, that this store's view
 * last saw, without a stat of the journal.
 *
 * Why: a stat of the journal before each write made its fdatasync slower, 0.109 → 0.146 ms
 * (`node bench/probes/disk-sync.mjs`, "prealloc + gap" against "+ stat"; a stat of another
 * file, or a read of the journal: no slower) on this machine's ext4 and Linux 6.18. The likely
 * cause is multigrain timestamps (Linux 6.13+): once a file's times were read, its next write
 * stamps a fine-grained time, which dirties the inode at every write. A lone writer stat-ed the
 * journal before each one.
 *
 * Instead: the directory's stamp has not changed since a stat of the journal less than a second
 * ago (nobody renamed another file over it), and the two bytes around the view's end read back as
 * a line's end and a NUL byte or the end of the file (nobody cut the journal in place below the
 * view, or wrote past it). What it does not see, a stat did not act on either: a change to
 * earlier lines, a write past the end of the reserve (the window read stops at its NUL bytes).
 * A folder whose attributes a client caches (NFS) may show a rename late; so did a stat.
 */
export class JournalWatch {
  /** The directory's stamp at the last stat of the journal, the journal's inode then, and when. */
  private seen: { stamp: string; inode: string; at: number } | undefined;
  /** When the directory's last stamp, too recent to trust, will have settled (`Date.now()`). */
  private settles = 0;

  constructor(
    private readonly fileSystem: FileSystem,
    private readonly dir: string,
    private readonly journalPath: string,
  ) {}

  /**
   * Whether the journal at the view's `offset` is as the view left it: `readKept` reads the
   * journal through the descriptor the store writes with (undefined when it names no such inode).
   * When it is not, the directory's stat if it took one, for `saw`.
   */
  async check(
    journal: { inode: string; offset: number },
    readKept: (offset: number, length: number) => Promise<Buffer | undefined>,
  ): Promise<WatchOutcome> {
    const seen = this.seen;
    if (seen?.inode !== journal.inode || journal.offset < 1 || performance.now() - seen.at > TRUST_MS) {
      return { untouched: false };
    }
    const dirStat = await this.statDir();
    if (dirStat === undefined || stampOf(dirStat) !== seen.stamp) return { untouched: false, dirStat };
    const around = await readKept(journal.offset - 1, 2).catch(() => undefined);
    if (around === undefined || around[0] !== NEWLINE) return { untouched: false, dirStat };
    if (around.length === 2 && around[1] !== NUL) return { untouched: false, dirStat, written: true };
    return { untouched: true };
  }

  /**
   * Whether a stat of the directory, before the journal's, is worth it: not while its last stamp
   * is still too recent to trust (it would only add a stat to each write).
   */
  get worthWatching(): boolean {
    return Date.now() > this.settles;
  }

  /** The directory's stat, to pass to `saw` once the journal has been stat-ed after it. */
  async statDir(): Promise<FileStat | undefined> {
    // A folder that cannot be stat-ed is not watched: the journal is stat-ed instead.
    return this.fileSystem.stat(this.dir).catch(() => undefined);
  }

  /**
   * Remembers that the journal had `inode` when the directory had `dirStat` (taken before the
   * journal's stat: a rename in between changes the directory's stamp again). Not for a journal
   * reached through a symbolic link: a rename in the folder it points into leaves this folder's
   * stamp as it was.
   */
  async saw(dirStat: FileStat, inode: string): Promise<void> {
    const stamp = stampOf(dirStat);
    this.seen = undefined;
    this.settles = settlesAt(dirStat);
    if (stamp === undefined || Date.now() <= this.settles) return;
    // A link (or a file system that cannot tell): not watched, and the folder not stat-ed for it
    // again before the journal would be stat-ed anyway.
    this.settles = Date.now() + TRUST_MS;
    if (!(await this.isPlainFile(inode))) return;
    this.seen = { stamp, inode, at: performance.now() };
    this.settles = 0;
  }

  /** Whether the journal's path names the file `inode` itself, not a link to it. */
  private async isPlainFile(inode: string): Promise<boolean> {
    const own = await this.fileSystem.lstat?.(this.journalPath).catch(() => undefined);
    return own !== undefined && (own.mode & constants.S_IFMT) === constants.S_IFREG && inodeOf(own) === inode;
  }
}

const NEWLINE = 0x0a;
const NUL = 0;
