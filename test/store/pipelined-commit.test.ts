import { describe, expect, it } from 'vitest';
import type { DashboardState } from '../../src/model/types.js';
import { type FileSystem, nodeFileSystem } from '../../src/store/file-system.js';
import { JournalAppender } from '../../src/store/journal-file.js';
import { bump } from '../helpers/builders.js';
import { file, readJson, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const eventIds = (state: DashboardState) => state.events.map((event) => event.event_id);

const eio = () => Object.assign(new Error('EIO: writeback error'), { code: 'EIO' });

/** Settles to the outcome without throwing, so a test can look at it. */
const outcome = (promise: Promise<unknown>) =>
  promise.then(
    () => 'ok',
    (error: { operation?: string }) => `failed: ${error.operation ?? String(error)}`,
  );

/**
 * The real file system, where each journal fdatasync waits until the test settles it (`syncs`, in
 * start order, with the descriptor it ran on and whether it was to leave the event loop free).
 * `failNextAppend()` fails the next journal append: a write of data past position 0 (the lock's
 * pid is written at 0; a checkpoint writes its files from 0, and an empty write past the header).
 */
function heldSyncs() {
  const syncs: Array<{
    fd: number;
    background: boolean;
    succeed: () => void;
    fail: (error: Error) => void;
  }> = [];
  const waiters: Array<() => void> = [];
  let appendFailure: { failed: () => void } | undefined;
  let appends = 0;
  const fs: FileSystem = {
    ...nodeFileSystem,
    async fdatasync(fd, options) {
      await new Promise<void>((resolve, reject) => {
        syncs.push({ fd, background: options?.background === true, succeed: resolve, fail: reject });
        for (const wake of waiters.splice(0)) wake();
      });
      return nodeFileSystem.fdatasync(fd);
    },
    async write(fd, data, position) {
      // Lines, not the NUL bytes of the reserve written after them.
      const lines = position > 0 && data.length > 0 && data[0] !== 0;
      if (appendFailure && lines) {
        const { failed } = appendFailure;
        appendFailure = undefined;
        failed();
        throw eio();
      }
      await nodeFileSystem.write(fd, data, position);
      if (lines) {
        appends++;
        for (const wake of waiters.splice(0)) wake();
      }
    },
  };
  const until = (done: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const check = () => {
        if (done()) resolve();
        else waiters.push(check);
      };
      check();
    });
  /** Resolves once `count` fdatasyncs have started. */
  const startedCount = (count: number) => until(() => syncs.length >= count);
  /** Resolves once `count` journal appends (writes of data past position 0) are done. */
  const appendedCount = (count: number) => until(() => appends >= count);
  /** Fails the next journal append; resolves once it has failed. */
  const failNextAppend = (): Promise<void> =>
    new Promise((resolve) => {
      appendFailure = { failed: resolve };
    });
  return { fs, syncs, startedCount, appendedCount, failNextAppend };
}

/** A store on `heldSyncs()` whose journal exists: its first write (e0) was a checkpoint, no fdatasync. */
async function heldStore() {
  const dir = tempDir();
  const held = heldSyncs();
  const { store } = storeIn(dir, { fileSystem: held.fs, checkpointIdleMs: 0 });
  await store.update(bump(0));
  return { dir, held, store };
}

/**
 * A store with its journal and four updates queued (e1 to e4), split into two batches, both
 * written; the first batch's fdatasync is held. `log` lists `u<n> <outcome>` as they settle.
 */
async function twoBatchesWritten() {
  const { dir, held, store } = await heldStore();
  const log: string[] = [];
  const outcomes = [1, 2, 3, 4].map((n) =>
    outcome(store.update(bump(n))).then((result) => {
      log.push(`u${n} ${result}`);
      return result;
    }),
  );
  await held.appendedCount(2);
  expect(eventIds(await storeIn(dir).store.load())).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
  return { dir, held, store, log, outcomes };
}

describe('pipelined group commit', () => {
  it.each(['load', 'getStats'] as const)(
    'a loop of %s() lets the writes it waits for finish (each read lets the event loop turn)',
    async (read) => {
      const dir = tempDir();
      const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
      await store.update(bump(1));
      let done = false;
      // Two writes: the second batch's fdatasync goes to the thread pool, whose answer comes
      // through the event loop.
      void Promise.all([store.update(bump(2)), store.update(bump(3))]).then(() => {
        done = true;
      });
      let reads = 0;
      while (!done && reads < 100_000) {
        await store[read]();
        reads++;
      }
      expect(done).toBe(true);
      expect((await store.load()).total_sessions).toBe(3);
      await store.close();
    },
  );

  it('close() and checkpoint() fold writes called just before them and not awaited yet', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    await store.update(bump(1));
    const main = () => readJson(file(dir, '.agent_metrics.json')).total_sessions;
    const first = Array.from({ length: 20 }, (_, i) => store.update(bump(2 + i)));
    await store.close();
    expect(main()).toBe(21);
    const more = Array.from({ length: 10 }, (_, i) => store.update(bump(22 + i)));
    await store.checkpoint();
    expect(main()).toBe(31);
    expect((await Promise.all([...first, ...more])).at(-1)?.total_sessions).toBe(31);
    await store.close();
  });

  it("writes the next batch while the first batch's fdatasync runs, and answers them in order", async () => {
    // The queue of four is split: two are written and fdatasynced (on the thread pool, since two
    // more wait), and the other two are written while that fdatasync is still running.
    const { held, store, log, outcomes } = await twoBatchesWritten();
    // One fdatasync at a time: the second batch's waits for the first's.
    expect(held.syncs.map((sync) => sync.background)).toEqual([true]);
    expect(log).toEqual([]);

    held.syncs[0]?.succeed();
    await held.startedCount(2);
    await Promise.all(outcomes.slice(0, 2));
    expect(log).toEqual(['u1 ok', 'u2 ok']);
    held.syncs[1]?.succeed();
    await Promise.all(outcomes);
    expect(log).toEqual(['u1 ok', 'u2 ok', 'u3 ok', 'u4 ok']);
    await store.close();
  });

  it('fails a batch appended after lines whose fdatasync failed, although its own succeeded', async () => {
    const { dir, held, store, outcomes } = await twoBatchesWritten();
    held.syncs[0]?.fail(eio());
    await held.startedCount(2);
    held.syncs[1]?.succeed();
    // All four are visible (others may have built on them), none acknowledged as durable.
    expect(await Promise.all(outcomes)).toEqual(Array(4).fill('failed: fdatasync journal'));

    // The next write checkpoints from memory (no journal fdatasync): everything is on disk after it.
    const syncsBefore = held.syncs.length;
    expect(eventIds(await store.update(bump(5)))).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5']);
    expect(held.syncs.length).toBe(syncsBefore);
    expect(eventIds(await storeIn(dir).store.load())).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5']);
    await store.close();
  });

  it('a failed fdatasync fails only the batches written after the last one that succeeded', async () => {
    // Linux reports a writeback error to one fdatasync of an open file only: run two at once, and
    // the one told might not be the one whose lines were lost. One at a time, the first one's
    // success covers its lines, and the second one's failure is the second batch's.
    const { held, store, outcomes } = await twoBatchesWritten();
    expect(held.syncs).toHaveLength(1);
    held.syncs[0]?.succeed();
    await held.startedCount(2);
    held.syncs[1]?.fail(eio());
    expect(await Promise.all(outcomes)).toEqual(['ok', 'ok', ...Array(2).fill('failed: fdatasync journal')]);
    await store.close();
  });

  it('after a failed fdatasync and the checkpoint that repairs it, later appends are acknowledged again', async () => {
    const { dir, held, store } = await heldStore();

    const first = outcome(store.update(bump(1)));
    await held.startedCount(1);
    held.syncs[0]?.fail(eio());
    expect(await first).toBe('failed: fdatasync journal');

    // The next write checkpoints from memory (no fdatasync of the journal): all is on disk again.
    await store.update(bump(2));
    expect(held.syncs).toHaveLength(1);

    // Plain appends to the new journal, each of whose own fdatasync succeeds.
    const later: string[] = [];
    for (const n of [3, 4]) {
      const result = outcome(store.update(bump(n)));
      await held.startedCount(n - 1);
      held.syncs[n - 2]?.succeed();
      later.push(await result);
    }
    expect(later).toEqual(['ok', 'ok']);
    expect(eventIds(await storeIn(dir).store.load())).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    await store.close();
  });

  it('after a failed fdatasync, the next write checkpoints even when a failed append made the store re-read the files', async () => {
    const { dir, held, store } = await heldStore();

    const first = outcome(store.update(bump(1)));
    await held.startedCount(1);
    // The next append fails (and is cut back) while the first batch's fdatasync runs; it waits
    // under the lock for that fdatasync, which then fails.
    const appendFailed = held.failNextAppend();
    const second = outcome(store.update(bump(2)));
    await appendFailed;
    held.syncs[0]?.fail(eio());
    expect(await first).toBe('failed: fdatasync journal');
    expect(await second).toBe('failed: append to journal');

    // `syncFailed` says: checkpoint now, append nothing on top of lines that may never reach disk.
    const third = outcome(store.update(bump(3)));
    await Promise.race([third, held.startedCount(2)]);
    held.syncs[1]?.succeed(); // only when it appended after all
    expect({ outcome: await third, journalSyncs: held.syncs.length }).toEqual({
      outcome: 'ok',
      journalSyncs: 1,
    });
    expect(eventIds(await storeIn(dir).store.load())).toEqual(['e0', 'e1', 'e3']);
    await store.close();
  });

  it('a lone update is fdatasynced inline (nothing else waits) and answered once it is done', async () => {
    const { held, store } = await heldStore();
    let answered = false;
    const update = outcome(store.update(bump(1))).then((result) => {
      answered = true;
      return result;
    });
    await held.startedCount(1);
    expect(held.syncs.map((sync) => sync.background)).toEqual([false]);
    expect(answered).toBe(false);
    held.syncs[0]?.succeed();
    expect(await update).toBe('ok');
    await store.close();
  });

  it("the appender's close() waits for every fdatasync before it closes the descriptor", async () => {
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
    await held.startedCount(1);
    await appender.write(Buffer.from('y'), { offset: stat.size + 1, inode, sync: true });
    const second = appender.syncWritten({ background: true });

    const closing = appender.close(); // as a checkpoint does, under the lock
    held.syncs[0]?.succeed();
    await first;
    await held.startedCount(2); // the second starts once the first is done
    expect(closed).toEqual([]); // and runs on that descriptor
    held.syncs[1]?.succeed();
    await second;
    await closing;
    expect(closed).toHaveLength(1);
  });
});
