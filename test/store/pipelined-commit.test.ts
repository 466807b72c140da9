import { describe, expect, it } from 'vitest';
import type { DashboardState } from '../../src/model/types.js';
import { type FileSystem, nodeFileSystem } from '../../src/store/file-system.js';
import { JournalAppender } from '../../src/store/journal-file.js';
import { makeEvent } from '../helpers/builders.js';
import { storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

function bump(n: number) {
  return (state: DashboardState) => {
    state.events.push(makeEvent({ event_id: `e${n}` }));
    state.total_sessions += 1;
  };
}

const eventIds = (state: DashboardState) => state.events.map((event) => event.event_id);

/**
 * The real file system, where each journal fdatasync waits until the test settles it: `syncs`
 * lists them in the order they started, each with `succeed()` and `fail(error)`.
 */
function heldSyncs() {
  const syncs: Array<{ background: boolean; succeed: () => void; fail: (error: Error) => void }> = [];
  let started: () => void = () => undefined;
  const fs: FileSystem = {
    ...nodeFileSystem,
    async fdatasync(fd, options) {
      await new Promise<void>((resolve, reject) => {
        syncs.push({ background: options?.background === true, succeed: resolve, fail: reject });
        started();
      });
      return nodeFileSystem.fdatasync(fd);
    },
  };
  /** Resolves once `count` fdatasyncs have started. */
  const startedCount = (count: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (syncs.length >= count) resolve();
      };
      started = check;
      check();
    });
  return { fs, syncs, startedCount };
}

/** Settles each promise's outcome into `log` (`<name> ok` / `<name> failed`) as it happens. */
function track(log: string[], name: string, promise: Promise<unknown>) {
  return promise.then(
    () => log.push(`${name} ok`),
    () => log.push(`${name} failed`),
  );
}

describe('pipelined group commit', () => {
  it("writes the next batch while the first batch's fdatasync runs, and answers them in order", async () => {
    const dir = tempDir();
    const held = heldSyncs();
    const { store } = storeIn(dir, { fileSystem: held.fs, checkpointIdleMs: 0 });
    await store.update(bump(0)); // bootstrap: a checkpoint creates the journal (no fdatasync)

    const log: string[] = [];
    const updates = [1, 2, 3, 4].map((n) => track(log, `u${n}`, store.update(bump(n))));
    // The queue of four is split: two are written and fdatasynced (on the thread pool, since
    // two more wait), and the other two are written while that fdatasync is still running.
    await held.startedCount(2);
    expect(held.syncs.map((sync) => sync.background)).toEqual([true, true]);
    const { store: reader } = storeIn(dir);
    expect(eventIds(await reader.load())).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    expect(log).toEqual([]);

    // The second batch's fdatasync ends first; its callers still wait for the first batch's.
    held.syncs[1]?.succeed();
    await store.load();
    expect(log).toEqual([]);
    held.syncs[0]?.succeed();
    await Promise.all(updates);
    expect(log).toEqual(['u1 ok', 'u2 ok', 'u3 ok', 'u4 ok']);
    await store.close();
  });

  it('fails a batch appended after lines whose fdatasync failed, although its own succeeded', async () => {
    const dir = tempDir();
    const held = heldSyncs();
    const { store } = storeIn(dir, { fileSystem: held.fs, checkpointIdleMs: 0 });
    await store.update(bump(0));

    const outcomes = [1, 2, 3, 4].map((n) => store.update(bump(n)));
    await held.startedCount(2);
    held.syncs[1]?.succeed();
    held.syncs[0]?.fail(Object.assign(new Error('EIO: writeback error'), { code: 'EIO' }));
    const settled = await Promise.allSettled(outcomes);
    // All four are visible (others may have built on them), none acknowledged as durable.
    for (const outcome of settled) {
      expect(outcome).toMatchObject({
        status: 'rejected',
        reason: { code: 'E_IO', operation: 'fdatasync journal', committed: true },
      });
    }

    // The next write checkpoints from memory (no journal fdatasync): everything is on disk after it.
    const syncsBefore = held.syncs.length;
    expect(eventIds(await store.update(bump(5)))).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5']);
    expect(held.syncs.length).toBe(syncsBefore);
    expect(eventIds(await storeIn(dir).store.load())).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5']);
    await store.close();
  });

  it('a lone update is fdatasynced inline (nothing else waits) and answered once it is done', async () => {
    const dir = tempDir();
    const held = heldSyncs();
    const { store } = storeIn(dir, { fileSystem: held.fs, checkpointIdleMs: 0 });
    await store.update(bump(0));
    const log: string[] = [];
    const update = track(log, 'u1', store.update(bump(1)));
    await held.startedCount(1);
    expect(held.syncs.map((sync) => sync.background)).toEqual([false]);
    expect(log).toEqual([]);
    held.syncs[0]?.succeed();
    await update;
    expect(log).toEqual(['u1 ok']);
    await store.close();
  });

  it("the appender's close() waits for every fdatasync still running before it closes the descriptor", async () => {
    const held = heldSyncs();
    const closed: number[] = [];
    const fs: FileSystem = {
      ...held.fs,
      async close(fd) {
        closed.push(fd);
        return nodeFileSystem.close(fd);
      },
    };
    const { store } = storeIn(tempDir());
    await store.update(bump(0)); // a journal with its header
    await store.close();
    const stat = await nodeFileSystem.stat(store.journalPath);
    const inode = `${stat.dev}:${stat.ino}`;
    const appender = new JournalAppender(fs, store.journalPath);
    // Two batches, the second written while the first one's fdatasync runs.
    await appender.write(Buffer.from('x'), { offset: stat.size, inode, sync: true });
    const first = appender.syncWritten({ background: true });
    await appender.write(Buffer.from('y'), { offset: stat.size + 1, inode, sync: true });
    const second = appender.syncWritten({ background: true });
    await held.startedCount(2);

    const closing = appender.close(); // as a checkpoint does, under the lock
    held.syncs[1]?.succeed();
    await second;
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toEqual([]); // the first fdatasync still runs on that descriptor
    held.syncs[0]?.succeed();
    await first;
    await closing;
    expect(closed).toHaveLength(1);
  });
});
