import { copyFileSync, renameSync, statSync, truncateSync, utimesSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DashboardState } from '../../src/model/types.js';
import type { FileStat, FileSystem } from '../../src/store/file-system.js';
import { JournalWatch } from '../../src/store/journal-watch.js';
import { makeEvent } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { file, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const JOURNAL = '.agent_metrics.journal';

function bump(n: number) {
  return (state: DashboardState) => {
    state.events.push(makeEvent({ event_id: `e${n}` }));
    state.total_sessions += 1;
  };
}

/** A directory whose stat answers `mtimeMs` (the rest of the file system is never called). */
function dirAt(mtimeMs: () => number): FileSystem {
  const stat = async (): Promise<FileStat> => ({
    dev: 1,
    ino: 2,
    size: 4096,
    mtimeMs: mtimeMs(),
    mode: 0o40700,
  });
  return { stat } as unknown as FileSystem;
}

const journal = { inode: '1:7', offset: 100 };
const bytes =
  (...values: number[]) =>
  async () =>
    Buffer.from(values);

describe('JournalWatch', () => {
  it('trusts a settled directory stamp with a line end and a NUL byte (or the end) at the view', async () => {
    let mtime = Date.now() - 60_000.5;
    const watch = new JournalWatch(
      dirAt(() => mtime),
      '/d',
    );
    expect(await watch.untouched(journal, bytes(0x0a, 0))).toBe(false); // nothing seen yet
    watch.saw(await watch.statDir(), journal.inode);
    expect(await watch.untouched(journal, bytes(0x0a, 0))).toBe(true);
    expect(await watch.untouched(journal, bytes(0x0a))).toBe(true);
    // Cut below the view, or written at it, or read through no descriptor of this inode.
    expect(await watch.untouched(journal, bytes())).toBe(false);
    expect(await watch.untouched(journal, bytes(0x7d, 0))).toBe(false);
    expect(await watch.untouched(journal, bytes(0x0a, 0x7b))).toBe(false);
    expect(await watch.untouched(journal, async () => undefined)).toBe(false);
    expect(await watch.untouched({ ...journal, inode: '1:8' }, bytes(0x0a, 0))).toBe(false);
    // A file created, renamed or deleted in the directory since.
    mtime += 1;
    expect(await watch.untouched(journal, bytes(0x0a, 0))).toBe(false);
  });

  it('does not trust a stamp from the last moments: a change in the same clock tick keeps the mtime', async () => {
    const recent = new JournalWatch(
      dirAt(() => Date.now() - 10.25),
      '/d',
    );
    recent.saw(await recent.statDir(), journal.inode);
    expect(await recent.untouched(journal, bytes(0x0a, 0))).toBe(false);
    // Nor is the directory worth a stat before each write until its stamp has settled.
    expect(recent.worthWatching).toBe(false);
    // Whole-second mtimes (a file system with 1 or 2 s stamps): seconds, not milliseconds.
    const coarse = new JournalWatch(
      dirAt(() => Math.floor(Date.now() / 1000) * 1000 - 1000),
      '/d',
    );
    coarse.saw(await coarse.statDir(), journal.inode);
    expect(await coarse.untouched(journal, bytes(0x0a, 0))).toBe(false);
    const old = new JournalWatch(
      dirAt(() => Math.floor(Date.now() / 1000) * 1000 - 5000),
      '/d',
    );
    old.saw(await old.statDir(), journal.inode);
    expect(await old.untouched(journal, bytes(0x0a, 0))).toBe(true);
    expect(old.worthWatching).toBe(true);
  });
});

describe('a store under a lease, with a settled directory', () => {
  /** A store that has written twice (the second time under the lease), in a directory whose mtime is a minute old. */
  async function settledStore() {
    const dir = tempDir();
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    await store.update(bump(1)); // a checkpoint creates the journal
    const past = new Date(Date.now() - 60_000);
    utimesSync(dir, past, past);
    await store.update(bump(2)); // under the lease: stats the journal, and remembers the directory
    faulty.arm(undefined);
    return { dir, store, faulty };
  }

  const journalStats = (faulty: FaultyFileSystem, dir: string) =>
    faulty.calls.filter((call) => call.method === 'stat' && call.args[0] === file(dir, JOURNAL)).length;

  it('writes without a stat of the journal', async () => {
    const { dir, store, faulty } = await settledStore();
    for (let n = 3; n <= 8; n++) await store.update(bump(n));
    expect(journalStats(faulty, dir)).toBe(0);
    const fresh = storeIn(dir, { projectName: 'p' }).store;
    expect((await fresh.load()).total_sessions).toBe(8);
    await Promise.all([store.close(), fresh.close()]);
  });

  it('notices a journal replaced by a rename, and writes to the new one', async () => {
    const { dir, store, faulty } = await settledStore();
    await store.update(bump(3));
    await store.update(bump(4));
    expect(journalStats(faulty, dir)).toBe(0);
    copyFileSync(file(dir, JOURNAL), file(dir, 'copy'));
    renameSync(file(dir, 'copy'), file(dir, JOURNAL));
    await store.update(bump(5));
    expect(journalStats(faulty, dir)).toBe(1);
    const fresh = storeIn(dir, { projectName: 'p' }).store;
    expect((await fresh.load()).events.map((event) => event.event_id)).toEqual([
      'e1',
      'e2',
      'e3',
      'e4',
      'e5',
    ]);
    await Promise.all([store.close(), fresh.close()]);
  });

  it('notices a journal cut in place below the view (same inode, same directory) and keeps every update', async () => {
    const { dir, store, faulty } = await settledStore();
    await store.update(bump(3));
    const cut = statSync(file(dir, JOURNAL)).size;
    await store.update(bump(4));
    truncateSync(file(dir, JOURNAL), cut);
    await store.update(bump(5));
    expect(journalStats(faulty, dir)).toBeGreaterThan(0);
    await store.close();
    const fresh = storeIn(dir, { projectName: 'p' }).store;
    expect((await fresh.load()).events.map((event) => event.event_id)).toEqual([
      'e1',
      'e2',
      'e3',
      'e4',
      'e5',
    ]);
    await fresh.close();
  });
});
