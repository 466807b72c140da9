import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/model/invariants.js';
import { recordEvent } from '../../src/model/record-event.js';
import type { DashboardState } from '../../src/model/types.js';
import { type FileSystem, nodeFileSystem } from '../../src/store/file-system.js';
import { JournalAppender } from '../../src/store/journal-file.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { bump, makeEvent } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { PowerCutFileSystem } from '../helpers/power-cut-fs.js';
import { storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const eventIds = (state: DashboardState) => state.events.map((event) => event.event_id);

describe('JournalAppender.close() before syncWritten()', () => {
  it('a failed fdatasync run by close() is reported by the syncWritten() that follows, not swallowed', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { checkpointIdleMs: 0 });
    await store.update(bump(1)); // a journal with its header
    await store.close();
    const stat = await nodeFileSystem.stat(store.journalPath);
    const faulty = new FaultyFileSystem();
    const appender = new JournalAppender(faulty.fs, store.journalPath);
    await appender.write(Buffer.from('x'), {
      offset: stat.size,
      inode: `${stat.dev}:${stat.ino}`,
      sync: true,
    });
    faulty.arm({ failAt: 1, code: 'EIO', methods: ['fdatasync'] });
    // What a checkpoint does when it takes the lock before the writer's syncWritten().
    await appender.close();
    expect(faulty.injected).toBe(1);
    // The lines were never made durable: the writer must not answer its callers as if they were.
    await expect(appender.syncWritten()).rejects.toMatchObject({ code: 'E_IO', committed: true });
  });
});

describe('journal format 2: replay past a damaged line', () => {
  it('a skipped line leaves the profile consistent: each line holds every counter of a changed profile', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { checkpointIdleMs: 0 });
    const cost = { estimated_cost_usd: 1 };
    await store.update((s) => recordEvent(s, makeEvent({ event_id: 'e1', ...cost }))); // the checkpoint
    await store.update((s) => recordEvent(s, makeEvent({ event_id: 'e2', ...cost }))); // line 1
    await store.update((s) =>
      recordEvent(s, makeEvent({ event_id: 'e3', status: 'error', error_message: 'x', ...cost })),
    ); // line 2
    const answered = await store.load();
    expect(checkInvariants(answered)).toEqual([]);

    // Damage line 1 (bit rot, or a line whose fdatasync failed): readers skip it and keep line 2.
    const journal = readFileSync(store.journalPath);
    const lineStart = journal.indexOf(0x0a) + 1;
    const at = journal.indexOf(Buffer.from('"e2"'), lineStart);
    journal[at + 1] = 'X'.charCodeAt(0);
    writeFileSync(store.journalPath, journal);

    const { store: reader } = storeIn(dir, { checkpointIdleMs: 0 });
    const replayed = await reader.load();
    expect(eventIds(replayed)).toEqual(['e1', 'e3']);
    // Line 2 holds every counter of the profile as its writer left them (not only those it
    // changed), so the counters and the rates derived from them agree, as with whole profiles.
    expect(checkInvariants(replayed)).toEqual([]);
  });
});

/**
 * PowerCutFileSystem, where one fdatasync fails with EIO as Linux reports a writeback error: the
 * bytes it was to write never reach the disk (the kernel marks those pages clean), even though
 * later fdatasyncs of the file succeed. Simplified to byte ranges rather than pages.
 */
function writebackErrorFs(disk: PowerCutFileSystem) {
  const durableLength = new Map<number, number>();
  const lost: Array<{ ino: number; start: number; end: number }> = [];
  let failNext = false;
  const fs = {} as Record<keyof FileSystem, unknown>;
  for (const method of Object.getOwnPropertyNames(PowerCutFileSystem.prototype)) {
    if (method === 'constructor') continue;
    fs[method as keyof FileSystem] = (disk as unknown as Record<string, (...a: unknown[]) => unknown>)[
      method
    ]?.bind(disk);
  }
  const sync = async (fd: number, inner: (fd: number) => Promise<void>) => {
    const stat = await disk.fstat(fd);
    if (failNext && (stat.mode & 0o170000) !== 0o040000) {
      failNext = false;
      lost.push({ ino: stat.ino, start: durableLength.get(stat.ino) ?? 0, end: stat.size });
      throw Object.assign(new Error('EIO: writeback error'), { code: 'EIO' });
    }
    await inner(fd);
    durableLength.set(stat.ino, stat.size);
  };
  // Bytes written again after the failure are dirty again: their next writeback is a new chance.
  fs.write = async (fd: number, data: Uint8Array, position: number) => {
    const { ino } = await disk.fstat(fd);
    const end = position + data.length;
    for (const [index, range] of [...lost.entries()].reverse()) {
      if (range.ino !== ino || end <= range.start || position >= range.end) continue;
      lost.splice(index, 1);
      if (range.start < position) lost.push({ ino, start: range.start, end: position });
      if (end < range.end) lost.push({ ino, start: end, end: range.end });
    }
    return disk.write(fd, data, position);
  };
  fs.fsync = (fd: number) => sync(fd, (d) => disk.fsync(d));
  fs.fdatasync = (fd: number) => sync(fd, (d) => disk.fdatasync(d));
  return {
    fs: fs as unknown as FileSystem,
    failNextSync() {
      failNext = true;
    },
    /** The disk after a power cut, without the bytes whose writeback failed. */
    async crashImage(paths: string[]): Promise<PowerCutFileSystem> {
      const image = disk.crashImage();
      for (const path of paths) {
        const stat = await image.stat(path).catch(() => undefined);
        for (const range of lost) {
          if (stat?.ino !== range.ino) continue;
          const fd = await image.open(path, 'read-write');
          const end = Math.min(range.end, stat.size);
          if (end > range.start) await image.write(fd, Buffer.alloc(end - range.start), range.start);
          await image.fsync(fd);
          await image.close(fd);
        }
      }
      return image;
    },
  };
}

describe('after a failed journal fdatasync', () => {
  it('the next write checkpoints instead of appending: an update acknowledged after it survives a power cut', async () => {
    const DIR = '/disk/projects/demo';
    const disk = new PowerCutFileSystem();
    const faulty = writebackErrorFs(disk);
    const options = { projectName: 'p', dir: DIR, checkpointIdleMs: 0 };
    const store = new MetricsStore({ ...options, fileSystem: faulty.fs });
    await store.update(bump(1)); // the first write: a checkpoint, which creates the journal
    faulty.failNextSync();
    await expect(store.update(bump(2))).rejects.toMatchObject({ committed: true });
    // Acknowledged: fdatasynced, after a line whose fdatasync failed.
    expect(eventIds(await store.update(bump(3)))).toEqual(['e1', 'e2', 'e3']);

    const image = await faulty.crashImage([store.journalPath, store.metricsPath]);
    const after = new MetricsStore({ ...options, fileSystem: image });
    expect(eventIds(await after.load())).toContain('e3');
  });
});
