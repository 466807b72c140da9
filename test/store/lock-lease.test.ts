import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type FileSystem, hasFlockWaiters, nodeFileSystem } from '../../src/store/file-system.js';
import { FileLock } from '../../src/store/lock.js';
import { startWorker } from '../helpers/child.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { flockIsFree } from '../helpers/flock.js';
import { storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const LOCK_FILE = '.agent_metrics.lock';

const turnOfTheEventLoop = () => new Promise((resolve) => setImmediate(resolve));
const count = (faulty: FaultyFileSystem, method: string) =>
  faulty.methodsCalled().filter((called) => called === method).length;

function leasedLock(path: string, leaseMs: number, faulty = new FaultyFileSystem()) {
  return { lock: new FileLock(faulty.fs, path, { timeoutMs: 10_000, fileMode: 0o600, leaseMs }), faulty };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the lock lease', () => {
  it('keeps the lock from one run to the next until the event loop turns', async () => {
    const path = `${tempDir()}/${LOCK_FILE}`;
    const { lock, faulty } = leasedLock(path, 10_000);
    await lock.run(async () => undefined);
    // Still held between the runs: another open file cannot take it.
    expect(await flockIsFree(path)).toBe(false);
    await lock.run(async () => undefined);
    expect(lock.acquisitions).toBe(1);
    expect(count(faulty, 'tryLockExclusive')).toBe(1);
    expect(count(faulty, 'unlock')).toBe(0);
    await turnOfTheEventLoop();
    expect(await flockIsFree(path)).toBe(true);
    expect(count(faulty, 'unlock')).toBe(1);
  });

  it('without a lease (leaseMs 0), every run takes and releases the lock', async () => {
    const path = `${tempDir()}/${LOCK_FILE}`;
    const { lock, faulty } = leasedLock(path, 0);
    await lock.run(async () => undefined);
    expect(await flockIsFree(path)).toBe(true);
    await lock.run(async () => undefined);
    expect(lock.acquisitions).toBe(2);
    expect(count(faulty, 'unlock')).toBe(2);
  });

  it('keepUntil holds the lease until its promise settles, then until the event loop turns', async () => {
    const path = `${tempDir()}/${LOCK_FILE}`;
    const { lock } = leasedLock(path, 10_000);
    let settle!: () => void;
    const answered = new Promise<void>((resolve) => {
      settle = resolve;
    });
    await lock.run(async () => lock.keepUntil(answered));
    await turnOfTheEventLoop();
    expect(await flockIsFree(path)).toBe(false);
    settle();
    await answered;
    await turnOfTheEventLoop();
    expect(await flockIsFree(path)).toBe(true);
  });

  it('ends a lease whose keepUntil promise takes longer than the lease (a hung fdatasync)', async () => {
    const path = `${tempDir()}/${LOCK_FILE}`;
    const { lock } = leasedLock(path, 20);
    const never = new Promise<void>(() => undefined);
    await lock.run(async () => lock.keepUntil(never));
    expect(await flockIsFree(path)).toBe(false);
    await vi.waitFor(async () => expect(await flockIsFree(path)).toBe(true), { timeout: 5_000 });
  });

  it('renews an expired lease while no other process waits', async () => {
    const path = `${tempDir()}/${LOCK_FILE}`;
    const nobodyWaits: FileSystem = { ...nodeFileSystem, flockWaiters: async () => false };
    const { lock, faulty } = leasedLock(path, 5, new FaultyFileSystem(nobodyWaits));
    vi.useFakeTimers({ toFake: ['performance'] });
    await lock.run(async () => undefined);
    vi.advanceTimersByTime(60_000);
    await lock.run(async () => undefined);
    expect(lock.acquisitions).toBe(1);
    expect(count(faulty, 'flockWaiters')).toBe(1);
    expect(count(faulty, 'tryLockExclusive')).toBe(1);
  });

  it('a lock file replaced during a lease: the next run locks the new file', async () => {
    const path = `${tempDir()}/${LOCK_FILE}`;
    const { lock } = leasedLock(path, 10_000);
    await lock.run(async () => undefined);
    rmSync(path);
    writeFileSync(path, '');
    // Another process would lock the new file: the holder must not run on under the old one.
    expect(await lock.run(async () => flockIsFree(path))).toBe(false);
    expect(lock.acquisitions).toBe(2);
  });

  it('close() while a run decides whether to keep an expired lease: the run still holds the lock', async () => {
    const path = `${tempDir()}/${LOCK_FILE}`;
    // An answer that takes a while (a file system that reads /proc/locks asynchronously).
    const slowToTell: FileSystem = {
      ...nodeFileSystem,
      flockWaiters: () => new Promise((resolve) => setTimeout(() => resolve(false), 10)),
    };
    const lock = new FileLock(slowToTell, path, { timeoutMs: 5_000, fileMode: 0o600, leaseMs: 5 });
    vi.useFakeTimers({ toFake: ['performance'] });
    let settle!: () => void;
    await lock.run(async () =>
      lock.keepUntil(
        new Promise<void>((resolve) => {
          settle = resolve;
        }),
      ),
    );
    vi.advanceTimersByTime(60_000); // the lease has lasted its time: the run asks who waits
    const next = lock.run(async () => flockIsFree(path));
    await lock.close(); // the idle checkpoint's releaseDescriptors, or store.close()
    settle();
    expect(await next).toBe(false);
    expect(await flockIsFree(path)).toBe(true);
  });

  it('gives the lock to a process that waited a whole lease before running again', async () => {
    const dir = tempDir();
    const { lock } = leasedLock(`${dir}/${LOCK_FILE}`, 10_000);
    vi.useFakeTimers({ toFake: ['performance'] });
    let settle!: () => void;
    const answered = new Promise<void>((resolve) => {
      settle = resolve;
    });
    await lock.run(async () => lock.keepUntil(answered));
    // The other process blocks in flock while the lease holds (its store's lock file is this one).
    const waiter = startWorker('lock-waiter.mjs', [dir, 10_000]);
    await waiter.waitForLine(/^waiting$/);
    // The worker says `waiting` just before its flock: wait until the kernel lists it blocked.
    const { ino } = await nodeFileSystem.stat(`${dir}/${LOCK_FILE}`);
    await vi.waitFor(() => expect(hasFlockWaiters(ino)).toBe(true), { timeout: 5_000 });
    // Not released by the event loop turns above: the lease waits for `answered`.
    expect(lock.acquisitions).toBe(1);
    vi.advanceTimersByTime(60_000); // the lease has lasted its time
    let ranAt = 0n;
    const next = lock.run(async () => {
      ranAt = process.hrtime.bigint();
    });
    settle();
    await next;
    const { code, stdout } = await waiter.exited;
    expect(code).toBe(0);
    const acquired = stdout.find((line) => line.startsWith('acquired ')) as string;
    const acquiredAt = BigInt(acquired.slice('acquired '.length));
    // The waiter ran its update before this process's next run, which took the lock anew.
    expect(ranAt > acquiredAt).toBe(true);
    expect(lock.acquisitions).toBe(2);
  });

  it('after giving the lease up, waits until another pid is in the lock file (at most 50 looks, not past the deadline)', async () => {
    const path = `${tempDir()}/${LOCK_FILE}`;
    vi.useFakeTimers({ toFake: ['performance'] });
    /** The second run of a lock whose lease ends while someone waits; `look` scripts each look. */
    const secondRun = async (
      look: (count: number) => void,
      timeoutMs = 10_000,
      whoWaits: () => boolean | undefined = () => true,
    ) => {
      let looks = 0;
      const faulty = new FaultyFileSystem({
        ...nodeFileSystem,
        flockWaiters: async () => whoWaits(),
        async read(fd, position, length) {
          // A look reads the pid; the read of the waiting line (a poller's mark) is not one.
          if (position === 0) look(++looks);
          return nodeFileSystem.read(fd, position, length);
        },
      });
      const lock = new FileLock(faulty.fs, path, { timeoutMs, fileMode: 0o600, leaseMs: 10_000 });
      await lock.run(async () => undefined);
      vi.advanceTimersByTime(60_000); // the lease has lasted its time: the run asks who waits
      faulty.arm(undefined);
      await lock.run(async () => undefined);
      await lock.close();
      const calls = faulty.methodsCalled();
      expect(calls.lastIndexOf('read')).toBeLessThan(calls.indexOf('tryLockExclusive'));
      return looks;
    };
    // The waiter takes the lock, writes its pid (and may have given the lock back) before the
    // 3rd look: the holder takes the lock again only then.
    expect(await secondRun((count) => count === 3 && writeFileSync(path, '4242      \n'))).toBe(3);
    // Nobody takes it (the waiter died): 50 looks.
    expect(await secondRun(() => undefined)).toBe(50);
    // A look that fails ends the wait.
    expect(
      await secondRun(() => {
        throw Object.assign(new Error('EIO'), { code: 'EIO' });
      }),
    ).toBe(1);
    // No wait past the acquisition's deadline.
    expect(await secondRun(() => undefined, 0)).toBe(0);
    // Nobody seen waiting (the file system cannot tell): the lease is given up, with one pause and
    // no wait for a takeover that may never come.
    expect(
      await secondRun(
        () => undefined,
        10_000,
        () => undefined,
      ),
    ).toBe(0);
    // Nor when asking failed.
    expect(
      await secondRun(
        () => undefined,
        10_000,
        () => {
          throw Object.assign(new Error('EIO'), { code: 'EIO' });
        },
      ),
    ).toBe(0);
  });

  it('another FileLock of this process queued behind a lease runs before the holder runs again', async () => {
    const path = `${tempDir()}/${LOCK_FILE}`;
    const { lock } = leasedLock(path, 10_000);
    const order: string[] = [];
    await lock.run(async () => {
      order.push('holder 1');
    });
    const rival = new FileLock(nodeFileSystem, path, { timeoutMs: 5_000, fileMode: 0o600 });
    const rivalRun = rival.run(async () => {
      order.push('rival');
    });
    const holderRun = lock.run(async () => {
      order.push('holder 2');
    });
    await Promise.all([rivalRun, holderRun]);
    expect(order).toEqual(['holder 1', 'rival', 'holder 2']);
    expect(lock.acquisitions).toBe(2);
  });

  it('keeps no lease for a while after another process held the lock', async () => {
    const dir = tempDir();
    const path = `${dir}/${LOCK_FILE}`;
    const holder = startWorker('lock-holder.mjs', [dir]);
    await holder.waitForLine(/^locked \d+$/);
    const { lock } = leasedLock(path, 10_000);
    const first = lock.run(async () => undefined);
    holder.child.stdin?.end();
    await first;
    await holder.exited;
    // The first run found the lock taken: this run takes and releases it again.
    await lock.run(async () => undefined);
    expect(lock.acquisitions).toBe(2);
    expect(await flockIsFree(path)).toBe(true);
  });

  it('close() releases a lease at once', async () => {
    const path = `${tempDir()}/${LOCK_FILE}`;
    const { lock } = leasedLock(path, 10_000);
    await lock.run(async () => undefined);
    await lock.close();
    expect(await flockIsFree(path)).toBe(true);
  });
});

describe('a process that polls for the lock (lockWait: poll)', () => {
  it('gets it from a holder that keeps it under a lease: the holder reads its mark as a waiter', async () => {
    const dir = tempDir();
    const writer = startWorker('lease-writer.mjs', [dir]);
    await writer.waitForLine(/^writing$/);
    const { store } = storeIn(dir, { projectName: 'p', lockWait: 'poll', lockTimeoutMs: 5_000 });
    // Starved until the timeout (E_LOCK_TIMEOUT) if the holder renewed its lease for as long as
    // nobody was blocked in flock.
    const update = store.update((draft) => {
      draft.poller = 'in';
    });
    // The writer stops whatever the update's outcome.
    await update.catch(() => undefined);
    writeFileSync(join(dir, 'stop'), '');
    const state = await update;
    const { code, stdout } = await writer.exited;
    expect(code).toBe(0);
    const wrote = Number(stdout.find((line) => line.startsWith('wrote '))?.slice('wrote '.length));
    // It got in while the other process was still writing.
    expect(state.total_sessions).toBeGreaterThan(0);
    expect(state.total_sessions).toBeLessThan(wrote);
    const after = await storeIn(dir, { projectName: 'p' }).store.load();
    expect(after.total_sessions).toBe(wrote);
    expect(after.poller).toBe('in');
  }, 20_000);

  it('leaves nothing waiting at the timeout, and clears its mark', async () => {
    const dir = tempDir();
    const holder = startWorker('lock-holder.mjs', [dir]);
    await holder.waitForLine(/^locked /);
    const { store } = storeIn(dir, { projectName: 'p', lockWait: 'poll', lockTimeoutMs: 100 });
    await expect(store.update(() => undefined)).rejects.toMatchObject({ code: 'E_LOCK_TIMEOUT' });
    // A blocking wait would still be in the kernel's table (and keep this process from exiting).
    const { ino } = await nodeFileSystem.stat(join(dir, LOCK_FILE));
    expect(hasFlockWaiters(ino)).toBe(false);
    expect(readFileSync(join(dir, LOCK_FILE), 'latin1').split('\n')[1]).toBe(' '.repeat(10));
    // With no time to wait, no mark at all: a holder would give the lock up for nobody.
    const faulty = new FaultyFileSystem();
    const immediate = storeIn(dir, {
      projectName: 'p',
      lockWait: 'poll',
      lockTimeoutMs: 0,
      fileSystem: faulty.fs,
    });
    await expect(immediate.store.update(() => undefined)).rejects.toMatchObject({ code: 'E_LOCK_TIMEOUT' });
    expect(faulty.calls.filter((call) => call.method === 'write' && call.args[2] === 11)).toEqual([]);
    holder.child.stdin?.end();
    expect((await holder.exited).code).toBe(0);
  });
});

describe('hasFlockWaiters (/proc/locks)', () => {
  function locksFile(text: string): string {
    const path = `${tempDir()}/locks`;
    writeFileSync(path, text);
    return path;
  }

  it('finds a blocked flock waiter on the inode number, and no other line counts', () => {
    const holderOnly = '1: FLOCK  ADVISORY  WRITE 5487 fe:00:2171165 0 EOF\n';
    const waiter = '1: -> FLOCK  ADVISORY  WRITE 5491 fe:00:2171165 0 EOF\n';
    const otherInode = '2: -> FLOCK  ADVISORY  WRITE 5492 fe:00:21711650 0 EOF\n';
    const pidLikeTheInode = '3: -> FLOCK  ADVISORY  WRITE 2171165 fe:00:7 0 EOF\n';
    const posixWaiter = '4: -> POSIX  ADVISORY  WRITE 5494 fe:00:2171165 0 EOF\n';
    expect(hasFlockWaiters(2171165, locksFile(holderOnly + waiter))).toBe(true);
    expect(hasFlockWaiters(2171165, locksFile(holderOnly + otherInode + pidLikeTheInode + posixWaiter))).toBe(
      false,
    );
    // On overlayfs the device in /proc/locks is not stat's: the inode alone is matched.
    expect(hasFlockWaiters(2170962, locksFile('1: -> FLOCK  ADVISORY  WRITE 9 00:27:2170962 0 EOF\n'))).toBe(
      true,
    );
  });

  it('reads each table alone: a waiter in a longer table read before is not seen in a shorter one', () => {
    // The buffer is reused between reads; only what the last read put in it counts.
    const padding = '1: FLOCK  ADVISORY  WRITE 1 fe:00:9 0 EOF\n'.repeat(100);
    const waiter = '2: -> FLOCK  ADVISORY  WRITE 5 fe:00:4242 0 EOF\n';
    expect(hasFlockWaiters(4242, locksFile(padding + waiter))).toBe(true);
    expect(hasFlockWaiters(4242, locksFile('1: FLOCK  ADVISORY  WRITE 1 fe:00:4242 0 EOF\n'))).toBe(false);
  });

  it('says it cannot tell (undefined) without /proc/locks or with a table over 64 KiB', () => {
    expect(hasFlockWaiters(1, `${tempDir()}/missing`)).toBeUndefined();
    const huge = '1: FLOCK  ADVISORY  WRITE 1 fe:00:9 0 EOF\n'.repeat(4000);
    expect(hasFlockWaiters(1, locksFile(huge))).toBeUndefined();
  });

  it('sees a real process blocked in flock on a file (Linux)', async () => {
    const dir = tempDir();
    const path = `${dir}/${LOCK_FILE}`;
    const fd = await nodeFileSystem.open(path, 'read-write-create');
    const { ino } = await nodeFileSystem.fstat(fd);
    expect(await nodeFileSystem.tryLockExclusive(fd)).toBe(true);
    expect(hasFlockWaiters(ino)).toBe(false);
    const waiter = startWorker('lock-waiter.mjs', [dir, 10_000]);
    await waiter.waitForLine(/^waiting$/);
    // The worker prints `waiting` just before its flock call: the kernel lists it once it blocks.
    await vi.waitFor(() => expect(hasFlockWaiters(ino)).toBe(true), { timeout: 5_000 });
    await nodeFileSystem.close(fd);
    expect((await waiter.exited).code).toBe(0);
  });
});

describe('MetricsStore under a lease', () => {
  it('reads nothing of the journal for a write that follows its own, and sees what another process wrote once the lease ended', async () => {
    const dir = tempDir();
    const faulty = new FaultyFileSystem();
    // A lease that cannot expire between these writes on a loaded machine: an expired one reads
    // the lock file's waiting line (a poller's mark), which is not the journal's business here.
    const { store } = storeIn(dir, { fileSystem: faulty.fs, checkpointIdleMs: 0, lockLeaseMs: 60_000 });
    const bump = (state: { total_sessions: number }) => {
      state.total_sessions += 1;
    };
    await store.update(bump);
    await store.update(bump);
    faulty.arm(undefined);
    await store.update(bump);
    await store.update(bump);
    // Per write: is the lock file still the one locked, was the JSON file replaced, and the
    // journal (a stat, or the directory's and two bytes: see JournalWatch). No lines read.
    const paths = (method: string) =>
      faulty.calls.filter((call) => call.method === method).map((call) => String(call.args[0]));
    const stats = paths('stat');
    expect(stats.filter((path) => path === join(dir, '.agent_metrics.lock'))).toHaveLength(2);
    expect(stats.filter((path) => path === join(dir, '.agent_metrics.json'))).toHaveLength(2);
    // The journal: a stat of it, or of the folder, or both when the folder's stamp is not yet
    // trusted; never more than one of each per write.
    expect(stats.filter((path) => path === dir).length).toBeLessThanOrEqual(2);
    expect(stats.filter((path) => path === join(dir, '.agent_metrics.journal')).length).toBeLessThanOrEqual(
      2,
    );
    expect(stats).toHaveLength(
      4 + stats.filter((path) => path === dir || path === join(dir, '.agent_metrics.journal')).length,
    );
    expect(faulty.calls.filter((call) => call.method === 'read').every((call) => call.args[2] === 2)).toBe(
      true,
    );
    expect(count(faulty, 'readFile') + count(faulty, 'open')).toBe(0);
    await turnOfTheEventLoop();
    const other = startWorker('lock-waiter.mjs', [dir, 10_000]);
    expect((await other.exited).code).toBe(0);
    const after = await store.update(bump);
    expect(after.total_sessions).toBe(6);
    await store.close();
  });

  it('a journal without a reserve that grew without the lock during a lease is read, not written over', async () => {
    const dir = tempDir();
    const { store, reports } = storeIn(dir, { checkpointIdleMs: 0 });
    const bump = (state: { total_sessions: number }) => {
      state.total_sessions += 1;
    };
    await store.update(bump);
    await store.update(bump);
    // Someone not holding the lock appends half a line; the next write, still under the lease,
    // must notice (the file's size changed) and cut it off as a torn end. (Into a reserve, such
    // an append leaves the size as it was: only a process that takes the lock may write there.)
    appendFileSync(store.journalPath, 'deadbeef {"half a line');
    const after = await store.update(bump);
    expect(after.total_sessions).toBe(3);
    expect(reports.map((report) => report.action)).toContain('journal-tail-truncated');
    await store.close();
  });
});
