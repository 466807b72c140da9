import { errnoCode } from '../errors.js';
import type { FileStat, FileSystem } from './file-system.js';

/**
 * A directory's stamp that no later change of its entries leaves as it was: its mtime changes
 * when a file in it is created, renamed or deleted (a journal replaced by a rename, a checkpoint).
 */
function stampOf(stat: FileStat): string {
  return `${stat.dev}:${stat.ino}:${stat.mtimeMs}`;
}

/**
 * How old a directory's mtime must be before its stamp is trusted: a change within the same tick
 * of the file system's clock can leave the mtime as it was. Linux stamps in clock ticks (≤ 10 ms);
 * a file system that stamps in whole seconds (ext3, FAT: 2 s) shows whole-second mtimes.
 */
function settleMs(stat: FileStat): number {
  return stat.mtimeMs % 1000 === 0 ? 3000 : 50;
}

/**
 * Under a lease: whether the journal is still the file, with the lines, that this store's view
 * last saw, without a stat of the journal.
 *
 * Why: a stat of the journal before each write made its fdatasync slower, 0.109 → 0.146 ms
 * (`node bench/probes/disk-sync.mjs`, "prealloc + gap" against "+ stat"; a stat of another
 * file: 0.106 ms) on this machine's ext4 and Linux 6.18. The likely cause is multigrain
 * timestamps (Linux 6.13+): once a file's times were read, its next write stamps a fine-grained
 * time, which dirties the inode at every write. A lone writer stat-ed the journal before each one.
 *
 * Instead: the directory's stamp has not changed since a stat of the journal (nobody renamed
 * another file over it), and the two bytes around the view's end read back as a line's end and a
 * NUL byte or the end of the file (nobody cut the journal in place below the view, or wrote past
 * it). What it does not see, a stat did not act on either: a change to earlier lines, a write
 * past the end of the reserve (its window read stops at the reserve's NUL bytes).
 */
export class JournalWatch {
  /** The directory's stamp at the last stat of the journal, and the journal's inode then. */
  private seen: { stamp: string; inode: string } | undefined;
  /** When the directory's last stamp, too recent to trust, will have settled (`Date.now()`). */
  private settlesAt = 0;

  constructor(
    private readonly fileSystem: FileSystem,
    private readonly dir: string,
  ) {}

  /** The directory's stat, to pass to `saw` once the journal has been stat-ed after it. */
  async statDir(): Promise<FileStat | undefined> {
    return this.fileSystem.stat(this.dir).catch((error: unknown) => {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    });
  }

  /**
   * Remembers that the journal had `inode` when the directory had `dirStat` (taken before the
   * journal's stat: a rename in between changes the directory's stamp again).
   */
  saw(dirStat: FileStat | undefined, inode: string): void {
    const settlesAt = dirStat === undefined ? 0 : dirStat.mtimeMs + settleMs(dirStat);
    const settled = dirStat !== undefined && Date.now() > settlesAt;
    this.seen = settled ? { stamp: stampOf(dirStat), inode } : undefined;
    this.settlesAt = settled ? 0 : settlesAt;
  }

  /**
   * Whether a stat of the directory, before the journal's, is worth it: not while its last stamp
   * is still too recent to trust (then it would only add a stat to each write).
   */
  get worthWatching(): boolean {
    return Date.now() > this.settlesAt;
  }

  /**
   * Whether the journal at the view's `offset` is as the view left it: `readKept` reads the
   * journal through the descriptor the store writes with (undefined when it names no such inode).
   */
  async untouched(
    journal: { inode: string; offset: number },
    readKept: (offset: number, length: number) => Promise<Buffer | undefined>,
  ): Promise<boolean> {
    const seen = this.seen;
    if (seen?.inode !== journal.inode || journal.offset < 1) return false;
    const dirStat = await this.statDir().catch(() => undefined);
    if (dirStat === undefined || stampOf(dirStat) !== seen.stamp) return false;
    const around = await readKept(journal.offset - 1, 2).catch(() => undefined);
    return around !== undefined && around[0] === NEWLINE && (around.length === 1 || around[1] === NUL);
  }
}

const NEWLINE = 0x0a;
const NUL = 0;
