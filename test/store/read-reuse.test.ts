import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type FileStat, type FileSystem, nodeFileSystem } from '../../src/store/file-system.js';
import { bump, makeEvent } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { file, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const MAIN = '.agent_metrics.json';

/**
 * `inner` with the stats of the main file (by its path, and by the descriptors opened on it)
 * passed through `change`: how old the file looks, or what identity it shows.
 */
function mainStatsChanged(
  inner: FileSystem,
  mainPath: string,
  change: (stat: FileStat) => FileStat,
): FileSystem {
  const mainFds = new Set<number>();
  return {
    ...inner,
    async open(path, mode, permissions) {
      const fd = await inner.open(path, mode, permissions);
      if (path === mainPath) mainFds.add(fd);
      else mainFds.delete(fd);
      return fd;
    },
    async fstat(fd) {
      const stat = await inner.fstat(fd);
      return mainFds.has(fd) ? change(stat) : stat;
    },
    async stat(path) {
      const stat = await inner.stat(path);
      return path === mainPath ? change(stat) : stat;
    },
  };
}

/** As if the file had been written a minute ago: its times have settled. */
const aMinuteOld = (stat: FileStat): FileStat => ({
  ...stat,
  mtimeMs: stat.mtimeMs - 60_000,
  ctimeMs: (stat.ctimeMs ?? stat.mtimeMs) - 60_000,
});

/** A store in `dir` (no idle checkpoint) whose first `updates` updates are in the main file. */
async function writerOf(dir: string, updates: number) {
  const { store } = storeIn(dir, { checkpointIdleMs: 0 });
  for (let i = 0; i < updates; i++) await store.update(bump(i));
  await store.checkpoint();
  return store;
}

describe('lock-free reads of an instance that does not write', () => {
  it('read the main file again only when it changed, and the journal every time', async () => {
    const dir = tempDir();
    const writer = await writerOf(dir, 3);
    const faulty = new FaultyFileSystem(mainStatsChanged(nodeFileSystem, file(dir, MAIN), aMinuteOld));
    const { store: reader } = storeIn(dir, { fileSystem: faulty.fs });
    const mainOpens = () =>
      faulty.calls.filter((call) => call.method === 'open' && call.args[0] === file(dir, MAIN)).length;
    const ids = async () => (await reader.load()).events.map((event) => event.event_id);

    expect(await ids()).toEqual(['e0', 'e1', 'e2']);
    expect(mainOpens()).toBe(1);
    await writer.update(bump(3)); // a journal line
    expect(await ids()).toEqual(['e0', 'e1', 'e2', 'e3']);
    expect(await ids()).toEqual(['e0', 'e1', 'e2', 'e3']);
    expect(mainOpens()).toBe(1);
    expect((await reader.getStats()).eventCount).toBe(4);
    expect(mainOpens()).toBe(1);

    await writer.update(bump(4));
    await writer.checkpoint(); // a new main file
    expect(await ids()).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    expect(mainOpens()).toBe(2);

    // A write reads the main file itself, under the lock, and keeps a view of its own.
    await reader.update(bump(5));
    expect(mainOpens()).toBe(3);
    await writer.update(bump(6));
    expect(await ids()).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6']);
    expect(mainOpens()).toBe(3);
    await reader.close();
    await writer.close();
  });

  it('read the main file again after a change in place that kept its size and mtime (its ctime tells)', async () => {
    const dir = tempDir();
    const writer = await writerOf(dir, 1);
    await writer.close();
    // An mtime put back after the change (`touch -r`), which no program can do to the ctime.
    const mtimeMs = Date.now() - 60_000;
    const mtimePutBack = (stat: FileStat): FileStat => ({ ...aMinuteOld(stat), mtimeMs });
    const { store: reader } = storeIn(dir, {
      fileSystem: mainStatsChanged(nodeFileSystem, file(dir, MAIN), mtimePutBack),
    });
    expect((await reader.load()).project_name).toBe('test-project');
    const main = file(dir, MAIN);
    writeFileSync(main, readFileSync(main, 'utf8').replace('"test-project"', '"best-project"'));
    expect((await reader.load()).project_name).toBe('best-project');
  });

  it('keep nothing of a main file whose times had not settled when read (a change within the same tick would not show)', async () => {
    const dir = tempDir();
    const writer = await writerOf(dir, 1);
    // Times that will not have settled while the test runs, the same at every stat.
    const later = Date.now() + 60_000;
    const unsettled = (stat: FileStat): FileStat => ({ ...stat, mtimeMs: later, ctimeMs: later });
    const faulty = new FaultyFileSystem(mainStatsChanged(nodeFileSystem, file(dir, MAIN), unsettled));
    const { store: reader } = storeIn(dir, { fileSystem: faulty.fs });
    await reader.load();
    await reader.load();
    expect(
      faulty.calls.filter((call) => call.method === 'open' && call.args[0] === file(dir, MAIN)),
    ).toHaveLength(2);
    await writer.close();
  });

  it('judge whether the times had settled when the file was stat-ed, not when a slow read of it ended', async () => {
    const dir = tempDir();
    const writer = await writerOf(dir, 1);
    // The times the file shows are those of the first stat: written just then.
    let first: number | undefined;
    const justWritten = (stat: FileStat): FileStat => {
      first ??= Date.now();
      return { ...stat, mtimeMs: first, ctimeMs: first };
    };
    const stats = mainStatsChanged(nodeFileSystem, file(dir, MAIN), justWritten);
    // A disk that takes 100 ms per read: the first load ends after the times have settled.
    const slow: FileSystem = {
      ...stats,
      read: async (fd, position, length) => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        return stats.read(fd, position, length);
      },
    };
    const faulty = new FaultyFileSystem(slow);
    const { store: reader } = storeIn(dir, { fileSystem: faulty.fs });
    const mainOpens = () =>
      faulty.calls.filter((call) => call.method === 'open' && call.args[0] === file(dir, MAIN)).length;
    await reader.load();
    await reader.load(); // stat-ed over 100 ms after the first stat: settled, kept
    expect(mainOpens()).toBe(2);
    await reader.load();
    expect(mainOpens()).toBe(2);
    await writer.close();
  });

  it('lose nothing when another main file shows the same identity: the journal tells, and writes read the file', async () => {
    const dir = tempDir();
    const writer = await writerOf(dir, 1);
    // Every main file shows the same inode, size and (settled) times: a file replaced within one
    // tick of the clock, with its size and a reused inode.
    const first = await nodeFileSystem.stat(file(dir, MAIN));
    const sameIdentity = (stat: FileStat): FileStat => ({
      ...stat,
      ino: first.ino,
      size: first.size,
      mtimeMs: first.mtimeMs - 60_000,
      ctimeMs: first.mtimeMs - 60_000,
    });
    const calls = new FaultyFileSystem(mainStatsChanged(nodeFileSystem, file(dir, MAIN), sameIdentity));
    const readerIn = () => storeIn(dir, { fileSystem: calls.fs });
    const replace = async (from: number) => {
      for (let i = from; i < from + 3; i++) await writer.update(bump(i));
      await writer.checkpoint();
      await writer.update(bump(from + 3));
    };
    // A write reads the main file under the lock itself: the one kept was of another file.
    const one = readerIn();
    expect((await one.store.load()).total_sessions).toBe(1);
    await replace(1);
    await one.store.update(bump(5));
    expect((await writer.load()).total_sessions).toBe(6);
    // A lock-free read finds that the journal does not continue the main file kept: reads again,
    // still without the lock.
    const two = readerIn();
    expect((await two.store.load()).total_sessions).toBe(6);
    await replace(6);
    const locks = () => calls.calls.filter((call) => call.method.endsWith('LockExclusive')).length;
    const locksBefore = locks();
    expect((await two.store.load()).total_sessions).toBe(10);
    expect(locks()).toBe(locksBefore);
    const said = (reports: typeof one.reports) =>
      reports.map((report) => `${report.action}: ${report.reason}`);
    expect([...said(one.reports), ...said(two.reports)]).toEqual([]);
    await one.store.close();
    await two.store.close();
    await writer.close();
  });

  it('hand out records frozen all the way down: a caller cannot change what later loads return', async () => {
    const dir = tempDir();
    const writer = await writerOf(dir, 0);
    await writer.update((state) => {
      state.events.push({ ...makeEvent({ event_id: 'x' }), extra: { note: 'on disk', tags: [{ k: 1 }] } });
    });
    await writer.checkpoint();
    const faulty = new FaultyFileSystem(mainStatsChanged(nodeFileSystem, file(dir, MAIN), aMinuteOld));
    const { store: reader } = storeIn(dir, { fileSystem: faulty.fs });
    for (const store of [reader, writer]) {
      const event = (await store.load()).events[0] as unknown as {
        extra: { note: string; tags: { k: number }[] };
      };
      expect(() => {
        event.extra.note = 'changed by a caller';
      }).toThrow(TypeError);
      expect(() => {
        (event.extra.tags[0] as { k: number }).k = 2;
      }).toThrow(TypeError);
      expect((await store.load()).events[0]).toMatchObject({ extra: { note: 'on disk', tags: [{ k: 1 }] } });
    }
    await writer.checkpoint();
    expect(JSON.parse(readFileSync(file(dir, MAIN), 'utf8')).events[0].extra.note).toBe('on disk');
    await writer.close();
  });
});
