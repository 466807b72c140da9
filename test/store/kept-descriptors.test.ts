import { readFileSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { SyncPlacement } from '../../src/store/file-system.js';
import { bump } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { file, readJson, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const JOURNAL = '.agent_metrics.journal';

/** Paths opened, and descriptors opened but not closed, in the calls logged so far. */
function descriptors(faulty: FaultyFileSystem, results: Map<number, unknown>) {
  const opened: string[] = [];
  const open = new Set<unknown>();
  faulty.calls.forEach((call, index) => {
    if (call.method === 'open') {
      opened.push(String(call.args[0]));
      // An open that failed (a file not there) opened nothing.
      if (results.has(index)) open.add(results.get(index));
    }
    if (call.method === 'close') open.delete(call.args[0]);
  });
  return { opened, open };
}

/** A FaultyFileSystem that also records what each `open` returned (the descriptor). */
function loggingFs() {
  const faulty = new FaultyFileSystem();
  const results = new Map<number, unknown>();
  const open = faulty.fs.open;
  faulty.fs.open = async (...args) => {
    const index = faulty.calls.length;
    const fd = await open(...args);
    results.set(index, fd);
    return fd;
  };
  return { faulty, results };
}

describe('descriptors kept open between writes', () => {
  it('a journal cut in place below the view (same inode, by a process not holding the lock): the next update still works and survives', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    await store.update(bump(1)); // bootstrap: a checkpoint creates the journal
    await store.update(bump(2)); // appends: the kept descriptor names the journal
    const cut = statSync(file(dir, JOURNAL)).size;
    await store.update(bump(3));
    // e.g. `cp older.journal .agent_metrics.journal`: O_TRUNC keeps the inode, the size shrinks.
    truncateSync(file(dir, JOURNAL), cut);

    // The view holds more than the file now: the next write checkpoints from memory, so e3
    // (acknowledged, then cut off the file) is written again, and nothing reads a negative length.
    await expect(store.update(bump(4))).resolves.toBeDefined();
    await store.close();
    const { store: fresh } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    expect((await fresh.load()).events.map((event) => event.event_id)).toEqual(['e1', 'e2', 'e3', 'e4']);
    await fresh.close();
  });

  it("reads another process's lines through the kept descriptor, under the lock", async () => {
    const dir = tempDir();
    const { faulty, results } = loggingFs();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    await store.update(bump(1)); // bootstrap: a checkpoint creates the journal
    await store.update(bump(2)); // opens the journal's descriptor for appending
    const { store: other } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    await other.update(bump(3));
    await other.update(bump(4));
    faulty.arm(undefined);
    results.clear();

    const state = await store.update(bump(5));
    expect(state.events.map((event) => event.event_id)).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
    // No open of the journal to read what `other` appended: one descriptor does both.
    expect(descriptors(faulty, results).opened.filter((path) => path === file(dir, JOURNAL))).toEqual([]);
    await store.close();
    await other.close();
  });

  it("a failed read of another process's lines fails that write alone; the next one reads them", async () => {
    const dir = tempDir();
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    await store.update(bump(1));
    await store.update(bump(2));
    const { store: other } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    await other.update(bump(3));
    faulty.arm({ failAt: 1, code: 'EIO', methods: ['read'] });
    await expect(store.update(bump(4))).rejects.toMatchObject({ code: 'E_IO', operation: 'read' });
    faulty.arm(undefined);
    const state = await store.update(bump(5));
    expect(state.events.map((event) => event.event_id)).toEqual(['e1', 'e2', 'e3', 'e5']);
    await store.close();
    await other.close();
  });

  it('appends to the journal through one descriptor, and reopens it after a checkpoint replaced the journal', async () => {
    const dir = tempDir();
    const { faulty, results } = loggingFs();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    await store.update(bump(1)); // bootstrap: a checkpoint creates the journal
    faulty.arm(undefined);
    results.clear();
    for (let n = 2; n <= 6; n++) await store.update(bump(n));
    const journalOpens = () =>
      descriptors(faulty, results).opened.filter((path) => path === file(dir, JOURNAL));
    // The first append opens it; the four after it use the same descriptor.
    expect(journalOpens()).toHaveLength(1);
    expect(faulty.methodsCalled().filter((method) => method === 'close')).toHaveLength(0);

    await store.checkpoint();
    await store.update(bump(7));
    expect(journalOpens()).toHaveLength(2);
    expect((await store.load()).total_sessions).toBe(7);
  });

  it('close() closes every descriptor it opened; the store works on afterwards', async () => {
    const dir = tempDir();
    const { faulty, results } = loggingFs();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    for (let n = 1; n <= 3; n++) await store.update(bump(n));
    await store.close();
    expect(descriptors(faulty, results).open.size).toBe(0);
    await store.update(bump(4));
    expect((await store.load()).total_sessions).toBe(4);
    await store.close();
    expect(descriptors(faulty, results).open.size).toBe(0);
  });

  it('close({ checkpoint: false }) closes every descriptor and leaves the journal unfolded', async () => {
    const dir = tempDir();
    const { faulty, results } = loggingFs();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    for (let n = 1; n <= 3; n++) await store.update(bump(n));
    faulty.arm(undefined);
    await store.close({ checkpoint: false });
    expect(descriptors(faulty, results).open.size).toBe(0);
    expect(faulty.methodsCalled()).not.toContain('tryLockExclusive');
    expect(readJson(file(dir, '.agent_metrics.json')).total_sessions).toBe(1); // the first write's checkpoint
    expect((await storeIn(dir, { projectName: 'p' }).store.load()).total_sessions).toBe(3);
  });

  it('the idle checkpoint closes the descriptors too', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const dir = tempDir();
      const { faulty, results } = loggingFs();
      const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 1000, fileSystem: faulty.fs });
      for (let n = 1; n <= 3; n++) await store.update(bump(n));
      expect(descriptors(faulty, results).open.size).toBeGreaterThan(0);
      await vi.advanceTimersByTimeAsync(1000);
      // The checkpoint's file work is real I/O: wait for its end, not for a time.
      await vi.waitFor(() => expect(descriptors(faulty, results).open.size).toBe(0), { timeout: 5000 });
      expect(
        JSON.parse(
          await import('node:fs').then((fs) => fs.readFileSync(file(dir, '.agent_metrics.json'), 'utf8')),
        ).total_sessions,
      ).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a journal replaced by another file is appended to at its new inode, not through the old descriptor', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    await store.update(bump(1));
    await store.update(bump(2));
    const before = readFileSync(file(dir, JOURNAL));
    // Another file takes the journal's name with the same contents: same size, another inode.
    writeFileSync(file(dir, 'replacement'), before);
    renameSync(file(dir, 'replacement'), file(dir, JOURNAL));
    await store.update(bump(3));
    // A fresh store reads the files, not the first store's memory: the third update is there.
    const fresh = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 }).store;
    expect((await fresh.load()).total_sessions).toBe(3);
  });
});

describe('SyncPlacement', () => {
  it('syncs inline while calls are fast on average; a slow disk sends them to the pool until it is fast again', () => {
    const placement = new SyncPlacement(2, 0.2);
    placement.took(0.2);
    expect(placement.inline()).toBe(true);
    // One slow call now and then (a disk hiccup) keeps the calls inline.
    placement.took(5);
    expect(placement.inline()).toBe(true);
    for (let call = 0; call < 10; call++) placement.took(0.2);
    // A disk that stays slow: to the pool.
    placement.took(10);
    placement.took(10);
    expect(placement.inline()).toBe(false);
    placement.took(10);
    expect(placement.inline()).toBe(false);
    // Fast again (measured on the pool): back inline after a few calls.
    const fastCalls = [0.3, 0.3, 0.3, 0.3, 0.3, 0.3].map((ms) => {
      placement.took(ms);
      return placement.inline();
    });
    expect(fastCalls.slice(0, 2)).toEqual([false, false]);
    expect(fastCalls.at(-1)).toBe(true);
  });
});
