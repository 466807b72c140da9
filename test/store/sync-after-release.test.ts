import { describe, expect, it } from 'vitest';
import type { DashboardState } from '../../src/model/types.js';
import { type FileSystem, nodeFileSystem } from '../../src/store/file-system.js';
import { JournalAppender } from '../../src/store/journal-file.js';
import { bump } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { file, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const JOURNAL = '.agent_metrics.journal';

const eventIds = (state: DashboardState) => state.events.map((event) => event.event_id);

/**
 * The real file system, except that while `hold()` is on, each fdatasync waits until `release()`;
 * `reached` resolves when one is waiting. The calls are logged, in order.
 */
function gatedFs() {
  const calls: string[] = [];
  let gate: Promise<void> | undefined;
  let open: () => void = () => undefined;
  let reachedNow: () => void = () => undefined;
  let reached = new Promise<void>((resolve) => {
    reachedNow = resolve;
  });
  const fs: FileSystem = {
    ...nodeFileSystem,
    async fdatasync(fd) {
      calls.push(`fdatasync ${fd}`);
      if (gate) {
        reachedNow();
        await gate;
      }
      return nodeFileSystem.fdatasync(fd);
    },
    async close(fd) {
      calls.push(`close ${fd}`);
      return nodeFileSystem.close(fd);
    },
  };
  return {
    fs,
    calls,
    hold() {
      gate = new Promise((resolve) => {
        open = resolve;
      });
      reached = new Promise((resolve) => {
        reachedNow = resolve;
      });
    },
    release() {
      gate = undefined;
      open();
    },
    get reached() {
      return reached;
    },
  };
}

describe('the journal is fdatasynced after the lock is released', () => {
  it('another writer takes the lock during our fdatasync, and our update answers only once it is done', async () => {
    const dir = tempDir();
    const gated = gatedFs();
    const { store: slow } = storeIn(dir, { fileSystem: gated.fs });
    await slow.update(bump(1)); // bootstrap: a checkpoint creates the journal
    gated.hold();
    let answered = false;
    const pending = slow.update(bump(2)).then((state) => {
      answered = true;
      return state;
    });
    await gated.reached;

    // Held through the fdatasync, the lock would make this writer time out.
    const { store: other } = storeIn(dir, { lockTimeoutMs: 2_000 });
    const otherState = await other.update(bump(3));
    expect(eventIds(otherState)).toEqual(['e1', 'e2', 'e3']); // it read our written line
    expect(answered).toBe(false);

    gated.release();
    expect(eventIds(await pending)).toEqual(['e1', 'e2']);
    expect(eventIds(await other.load())).toEqual(['e1', 'e2', 'e3']);
    await slow.close();
    await other.close();
  });

  it('a failed fdatasync rejects as committed: the line stays, visible, since others may build on it', async () => {
    const dir = tempDir();
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(dir, { fileSystem: faulty.fs });
    await store.update(bump(1));
    faulty.arm({ failAt: 1, code: 'EIO', methods: ['fdatasync'] });
    await expect(store.update(bump(2))).rejects.toMatchObject({
      code: 'E_IO',
      operation: 'fdatasync journal',
      path: file(dir, JOURNAL),
      committed: true,
    });
    faulty.arm(undefined);
    expect(eventIds(await store.load())).toEqual(['e1', 'e2']);
    // The store goes on writing after it.
    expect(eventIds(await store.update(bump(3)))).toEqual(['e1', 'e2', 'e3']);
    await store.close();
  });
});

describe('JournalAppender', () => {
  /** An appender on a real journal, with 'x' written at its end (`sync` as given); calls logged from there. */
  async function writtenX(sync: boolean) {
    const gated = gatedFs();
    const { store } = storeIn(tempDir(), { fileSystem: gated.fs });
    await store.update(bump(1)); // a journal with its header
    await store.close();
    const stat = await nodeFileSystem.stat(store.journalPath);
    const appender = new JournalAppender(gated.fs, store.journalPath);
    gated.calls.length = 0;
    await appender.write(Buffer.from('x'), { offset: stat.size, inode: `${stat.dev}:${stat.ino}`, sync });
    return { appender, calls: gated.calls };
  }

  it('close() between a write and its sync fdatasyncs the lines first; the sync then shares that result', async () => {
    const { appender, calls } = await writtenX(true);
    // What a checkpoint does when it gets the lock right after the writer released it.
    await appender.close();
    await appender.syncWritten();
    expect(calls).toHaveLength(2);
    const [synced, closed] = calls;
    // One fdatasync, on the descriptor written through, before that descriptor is closed.
    expect(synced?.replace('fdatasync', 'close')).toBe(closed);
  });

  it('without sync, nothing is left to sync and close() closes at once', async () => {
    const { appender, calls } = await writtenX(false);
    await appender.syncWritten();
    await appender.close();
    expect(calls.filter((call) => call.startsWith('fdatasync'))).toEqual([]);
    expect(calls.filter((call) => call.startsWith('close'))).toHaveLength(1);
  });
});
