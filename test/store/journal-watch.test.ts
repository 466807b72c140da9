import {
  closeSync,
  copyFileSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FileStat, FileSystem } from '../../src/store/file-system.js';
import { JournalWatch } from '../../src/store/journal-watch.js';
import { bump } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { file, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const JOURNAL = '.agent_metrics.journal';

/** A directory whose stat answers these times (the rest of the file system is never called). */
function dirAt(times: () => { mtimeMs: number; ctimeMs?: number }, journalMode = 0o100600): FileSystem {
  const stat = async (): Promise<FileStat> => ({ dev: 1, ino: 2, size: 4096, mode: 0o40700, ...times() });
  // The journal itself (inode 1:7), as lstat sees its path.
  const lstat = async (): Promise<FileStat> => ({ dev: 1, ino: 7, size: 1, mtimeMs: 0, mode: journalMode });
  return { stat, lstat } as unknown as FileSystem;
}

const journal = { inode: '1:7', offset: 100 };
const bytes =
  (...values: number[]) =>
  async () =>
    Buffer.from(values);

/** A watch that saw the journal when the directory had `times` (stat-ed now). */
async function watchThatSaw(times: () => { mtimeMs: number; ctimeMs?: number }, journalMode?: number) {
  const watch = new JournalWatch(dirAt(times, journalMode), '/d', '/d/j');
  await watch.saw((await watch.statDir()) as FileStat, journal.inode);
  return watch;
}

const untouched = async (
  watch: JournalWatch,
  read: (offset: number, length: number) => Promise<Buffer | undefined> = bytes(0x0a, 0),
) => (await watch.check(journal, read)).untouched;

describe('JournalWatch', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('trusts a settled directory stamp with a line end and a NUL byte (or the end) at the view', async () => {
    const old = Date.now() - 60_000.5;
    let times = { mtimeMs: old, ctimeMs: old };
    expect(
      await untouched(
        new JournalWatch(
          dirAt(() => times),
          '/d',
          '/d/j',
        ),
      ),
    ).toBe(false); // nothing seen yet
    const watch = await watchThatSaw(() => times);
    expect(await untouched(watch)).toBe(true);
    expect(await untouched(watch, bytes(0x0a))).toBe(true);
    // Cut below the view, or written at it, or read through no descriptor of this inode.
    expect(await untouched(watch, bytes())).toBe(false);
    expect(await untouched(watch, bytes(0x7d, 0))).toBe(false);
    expect(await untouched(watch, bytes(0x0a, 0x7b))).toBe(false);
    expect(await untouched(watch, async () => undefined)).toBe(false);
    expect((await watch.check({ ...journal, inode: '1:8' }, bytes(0x0a, 0))).untouched).toBe(false);
    // A file created, renamed or deleted in the directory since; or only its ctime changed
    // (a program set the mtime back after the rename): the stat taken is handed on for `saw`.
    times = { mtimeMs: old + 1, ctimeMs: old };
    expect(await watch.check(journal, bytes(0x0a, 0))).toEqual({
      untouched: false,
      dirStat: expect.any(Object),
    });
    times = { mtimeMs: old, ctimeMs: old + 1 };
    expect(await untouched(watch)).toBe(false);
    times = { mtimeMs: old, ctimeMs: old };
    // Written at the view's end (into the reserve): said, so that the store reads it.
    expect(await watch.check(journal, bytes(0x0a, 0x7b))).toMatchObject({ untouched: false, written: true });
  });

  it('does not trust a stamp from the last moments, or without a ctime; and stats the journal again after a second', async () => {
    const now = Date.now();
    const recent = await watchThatSaw(() => ({ mtimeMs: now - 10.25, ctimeMs: now - 10.25 }));
    expect(await untouched(recent)).toBe(false);
    // Nor is the directory worth a stat before each write until its stamp has settled.
    expect(recent.worthWatching).toBe(false);
    // An mtime set back (rsync, `cp -a`): the ctime tells it is recent.
    expect(await untouched(await watchThatSaw(() => ({ mtimeMs: now - 60_000.5, ctimeMs: now - 5.5 })))).toBe(
      false,
    );
    // Whole-second times (a file system with 1 or 2 s stamps): seconds, not milliseconds.
    const second = Math.floor(now / 1000) * 1000;
    expect(
      await untouched(await watchThatSaw(() => ({ mtimeMs: second - 1000, ctimeMs: second - 1000 }))),
    ).toBe(false);
    const coarse = await watchThatSaw(() => ({ mtimeMs: second - 5000, ctimeMs: second - 5000 }));
    expect(await untouched(coarse)).toBe(true);
    expect(coarse.worthWatching).toBe(true);
    // A journal reached through a symbolic link: a rename in the folder it points into is not seen.
    const settled = () => ({ mtimeMs: now - 60_000.5, ctimeMs: now - 60_000.5 });
    expect(await untouched(await watchThatSaw(settled, 0o120777))).toBe(false);
    expect(await untouched(await watchThatSaw(settled))).toBe(true);
    const noCtime = await watchThatSaw(() => ({ mtimeMs: now - 60_000.5 }));
    expect(await untouched(noCtime)).toBe(false);
    expect(noCtime.worthWatching).toBe(false);

    vi.useFakeTimers({ toFake: ['performance'] });
    const watch = await watchThatSaw(() => ({ mtimeMs: now - 60_000.5, ctimeMs: now - 60_000.5 }));
    vi.advanceTimersByTime(900);
    expect(await untouched(watch)).toBe(true);
    vi.advanceTimersByTime(200);
    expect(await untouched(watch)).toBe(false);
  });
});

describe('a store under a lease, with a settled directory', () => {
  /** A store that has written twice (the second time under the lease), in a directory whose mtime is a minute old. */
  async function settledStore() {
    const dir = tempDir();
    const faulty = new FaultyFileSystem();
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    await store.update(bump(1)); // a checkpoint creates the journal
    // A minute on (the folder's last change is then that old), and no time passes for the
    // second after which the journal is stat-ed again.
    vi.useFakeTimers({ toFake: ['Date', 'performance'] });
    vi.setSystemTime(Date.now() + 60_000);
    await store.update(bump(2)); // under the lease: stats the journal, and remembers the directory
    faulty.arm(undefined);
    return { dir, store, faulty, reports };
  }

  afterEach(() => {
    vi.useRealTimers();
  });

  /** The events a fresh store loads: as after a crash (no close(), whose checkpoint would write the state in memory). */
  async function eventIdsOnDisk(dir: string): Promise<string[]> {
    const fresh = storeIn(dir, { projectName: 'p' }).store;
    const ids = (await fresh.load()).events.map((event) => event.event_id);
    await fresh.close();
    return ids;
  }

  const ids = (count: number) => Array.from({ length: count }, (_, index) => `e${index + 1}`);

  const journalStats = (faulty: FaultyFileSystem, dir: string) =>
    faulty.calls.filter((call) => call.method === 'stat' && call.args[0] === file(dir, JOURNAL)).length;

  it('writes without a stat of the journal', async () => {
    const { dir, store, faulty } = await settledStore();
    for (let n = 3; n <= 8; n++) await store.update(bump(n));
    expect(journalStats(faulty, dir)).toBe(0);
    expect(await eventIdsOnDisk(dir)).toEqual(ids(8));
    await store.close();
  });

  it("notices a journal replaced by a rename, even with the folder's mtime set back, and writes to the new one", async () => {
    const { dir, store, faulty } = await settledStore();
    // A whole-millisecond mtime, which utimes can set back exactly.
    const mtime = new Date(Date.now() - 3_600_000);
    utimesSync(dir, mtime, mtime);
    await store.update(bump(3)); // the folder changed: stats the journal, remembers the new stamp
    faulty.arm(undefined);
    await store.update(bump(4));
    expect(journalStats(faulty, dir)).toBe(0);
    copyFileSync(file(dir, JOURNAL), file(dir, 'copy'));
    renameSync(file(dir, 'copy'), file(dir, JOURNAL));
    // As rsync, `cp -a` or tar leave a folder: its mtime set back (its ctime cannot be).
    utimesSync(dir, mtime, mtime);
    await store.update(bump(5));
    expect(journalStats(faulty, dir)).toBe(1);
    expect(await eventIdsOnDisk(dir)).toEqual(ids(5));
    await store.close();
  });

  it('notices a journal cut in place below the view (same inode, same directory) and keeps every update', async () => {
    const { dir, store, faulty } = await settledStore();
    await store.update(bump(3));
    const cut = statSync(file(dir, JOURNAL)).size;
    await store.update(bump(4));
    truncateSync(file(dir, JOURNAL), cut);
    await store.update(bump(5));
    expect(journalStats(faulty, dir)).toBeGreaterThan(0);
    expect(await eventIdsOnDisk(dir)).toEqual(ids(5));
    await store.close();
  });

  it('does not trust the folder for a journal reached through a symbolic link', async () => {
    const { dir, store, faulty } = await settledStore();
    const elsewhere = tempDir();
    renameSync(file(dir, JOURNAL), join(elsewhere, 'journal'));
    symlinkSync(join(elsewhere, 'journal'), file(dir, JOURNAL));
    await store.update(bump(3));
    faulty.arm(undefined);
    await store.update(bump(4));
    // Not watched, and the folder not stat-ed before each write for nothing: the journal is.
    expect(faulty.calls.filter((call) => call.method === 'stat' && call.args[0] === dir)).toHaveLength(0);
    expect(journalStats(faulty, dir)).toBe(1);
    copyFileSync(join(elsewhere, 'journal'), join(elsewhere, 'copy'));
    renameSync(join(elsewhere, 'copy'), join(elsewhere, 'journal'));
    await store.update(bump(5));
    expect(await eventIdsOnDisk(dir)).toEqual(ids(5));
    await store.close();
  });

  it("reads what was written into the reserve at the view's end, not over it", async () => {
    const { dir, store, reports } = await settledStore();
    for (let n = 3; n <= 50; n++) await store.update(bump(n));
    const end = readFileSync(file(dir, JOURNAL)).indexOf(0);
    // Someone not holding the lock writes half a line where ours would go.
    const fd = openSync(file(dir, JOURNAL), 'r+');
    writeSync(fd, 'deadbeef {"half a line', end);
    closeSync(fd);
    await store.update(bump(51));
    expect(reports.map((report) => report.action)).toContain('journal-tail-truncated');
    expect(await eventIdsOnDisk(dir)).toEqual(ids(51));
    await store.close();
  });

  it('notices a journal with a reserve cut in place below the view, and keeps every update', async () => {
    const { dir, store } = await settledStore();
    // Past 16 KiB of lines the journal has its reserve: NUL bytes after the lines.
    for (let n = 3; n <= 50; n++) await store.update(bump(n));
    const journalBytes = readFileSync(file(dir, JOURNAL));
    expect(journalBytes.at(-1)).toBe(0);
    const lines = journalBytes.subarray(0, journalBytes.indexOf(0)).toString('utf8').split('\n');
    // Cut in place at the end of the line before last: the last update's line is gone.
    const cut = Buffer.byteLength(lines.slice(0, -2).join('\n')) + 1;
    truncateSync(file(dir, JOURNAL), cut);
    await store.update(bump(51));
    expect(await eventIdsOnDisk(dir)).toEqual(ids(51));
    await store.close();
  });
});
