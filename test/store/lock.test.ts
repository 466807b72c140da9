import { rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LockAcquisitionError } from '../../src/errors.js';
import type { FileSystem } from '../../src/store/file-system.js';
import { nodeFileSystem } from '../../src/store/file-system.js';
import { FileLock } from '../../src/store/lock.js';
import { makeState } from '../helpers/builders.js';
import { startWorker } from '../helpers/child.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { flockIsFree } from '../helpers/flock.js';
import { PowerCutFileSystem } from '../helpers/power-cut-fs.js';
import { corruptFilesIn, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A worker process that holds the lock of `dir` until its stdin closes. */
async function holdLock(dir: string) {
  const holder = startWorker('lock-holder.mjs', [dir]);
  const line = await holder.waitForLine(/^locked \d+$/);
  return { holder, pid: Number(line.split(' ')[1]) };
}

/** An in-memory disk that logs the lock's flock calls and says when a blocking wait starts. */
class FlockLoggingDisk extends PowerCutFileSystem {
  readonly calls: string[] = [];
  private blocked!: () => void;
  /** Resolves when the first blocking flock starts. */
  readonly waiting = new Promise<void>((resolve) => {
    this.blocked = resolve;
  });

  override async tryLockExclusive(fd: number): Promise<boolean> {
    const taken = await super.tryLockExclusive(fd);
    this.calls.push(`try ${taken}`);
    return taken;
  }

  override async lockExclusive(fd: number): Promise<void> {
    this.calls.push('wait');
    this.blocked();
    await super.lockExclusive(fd);
    this.calls.push('granted');
  }

  /** Another process's open file holding the lock; closing it releases the lock. */
  async lockFromElsewhere(path: string): Promise<number> {
    const fd = await this.open(path, 'read-write-create');
    expect(await super.tryLockExclusive(fd)).toBe(true);
    return fd;
  }
}

describe('file locking', () => {
  it('times out with LockAcquisitionError naming the holder, and writes nothing', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { lockTimeoutMs: 150 });
    await store.save(makeState(1, 0));
    const { holder, pid } = await holdLock(dir);
    const error = await store
      .update((state) => {
        state.total_sessions = 99;
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockAcquisitionError);
    expect(error).toMatchObject({ code: 'E_LOCK_TIMEOUT', holderPid: pid, timeoutMs: 150 });
    expect((await store.load()).total_sessions).toBe(0);
    holder.child.stdin?.end();
    expect((await holder.exited).stdout).toContain('released');
    // Once released, the lock is free again.
    expect(
      (
        await store.update((s) => {
          s.total_sessions = 1;
        })
      ).total_sessions,
    ).toBe(1);
  });

  it('takes over the lock of a holder killed with SIGKILL', async () => {
    const dir = tempDir();
    let blocked!: () => void;
    const waitStarted = new Promise<void>((resolve) => {
      blocked = resolve;
    });
    // Tells us when the waiter has found the lock taken and started its blocking flock, so the
    // kill happens while it waits for the kernel to hand the lock over.
    const watching: FileSystem = {
      ...nodeFileSystem,
      lockExclusive(fd) {
        blocked();
        return nodeFileSystem.lockExclusive(fd);
      },
    };
    const { store } = storeIn(dir, { lockTimeoutMs: 5_000, fileSystem: watching });
    const { holder } = await holdLock(dir);
    const waiting = store.update((state) => {
      state.total_sessions += 1;
    });
    await Promise.race([waitStarted, waiting]);
    holder.child.kill('SIGKILL');
    expect((await holder.exited).signal).toBe('SIGKILL');
    expect((await waiting).total_sessions).toBe(1);
  });

  it('a load that must recover waits for the lock, and never returns an empty state instead', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { lockTimeoutMs: 100 });
    await store.save(makeState(1, 0));
    await store.save(makeState(2, 0));
    const { holder } = await holdLock(dir);
    writeFileSync(store.metricsPath, '{corrupt');
    await expect(store.load()).rejects.toMatchObject({ code: 'E_LOCK_TIMEOUT' });
    expect(corruptFilesIn(dir)).toEqual([]); // nothing was moved without the lock
    holder.child.stdin?.end();
    await holder.exited;
    // The holder appended to the journal of the (then valid) main file, written whole by save().
    // Recovery moves the corrupt main aside, restores the .bak (the first save) and sets that
    // journal aside too: it continues the second save, which no backup holds.
    expect((await store.load()).events).toHaveLength(1);
    expect(corruptFilesIn(dir)).toHaveLength(2);
  });

  it('releases the lock when the mutator throws, and writes nothing', async () => {
    const { store } = storeIn(tempDir(), { lockTimeoutMs: 1_000 });
    await store.save(makeState(1, 0));
    await expect(
      store.update(() => {
        throw new Error('mutator failed');
      }),
    ).rejects.toThrow('mutator failed');
    expect((await store.load()).events).toHaveLength(1);
    expect(
      (
        await store.update((s) => {
          s.total_sessions = 5;
        })
      ).total_sessions,
    ).toBe(5);
  });

  it('an in-process waiter times out behind a long holder without wedging the queue', async () => {
    const dir = tempDir();
    const slow = storeIn(dir).store;
    const impatient = storeIn(dir, { lockTimeoutMs: 50 }).store;
    let finish!: () => void;
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const first = slow.update(async (state) => {
      started();
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
      state.total_sessions += 1;
    });
    await running;
    await expect(
      impatient.update((s) => {
        s.total_tokens = 1;
      }),
    ).rejects.toBeInstanceOf(LockAcquisitionError);
    const third = slow.update((state) => {
      state.total_sessions += 1;
    });
    finish();
    await first;
    expect((await third).total_sessions).toBe(2);
    expect((await slow.load()).total_tokens).toBe(0);
  });

  it('starts over when the lock file is replaced between open and flock', async () => {
    const dir = tempDir();
    const lockPath = `${dir}/.agent_metrics.lock`;
    let replaced = false;
    // Another party deletes and recreates the lock file right after we opened the old one.
    const racing: FileSystem = {
      ...nodeFileSystem,
      async tryLockExclusive(fd) {
        if (!replaced) {
          replaced = true;
          rmSync(lockPath);
          writeFileSync(lockPath, '');
        }
        return nodeFileSystem.tryLockExclusive(fd);
      },
    };
    const lock = new FileLock(racing, lockPath, { timeoutMs: 1_000, fileMode: 0o600 });
    const inode = await lock.run(async () => (await nodeFileSystem.stat(lockPath)).ino);
    expect(replaced).toBe(true);
    expect(inode).toBe((await nodeFileSystem.stat(lockPath)).ino);
    // The lock we hold is the one at the path: a second flock on that file is refused meanwhile.
    const held = await lock.run(async () => {
      const fd = await nodeFileSystem.open(lockPath, 'read');
      try {
        return await nodeFileSystem.tryLockExclusive(fd);
      } finally {
        await nodeFileSystem.close(fd);
      }
    });
    expect(held).toBe(false);
  });

  it('waits in a blocking flock when the lock is taken, and runs once it is released', async () => {
    const disk = new FlockLoggingDisk();
    const other = await disk.lockFromElsewhere('/lock');
    const lock = new FileLock(disk, '/lock', { timeoutMs: 5_000, fileMode: 0o600 });
    const ran = lock.run(async () => {
      disk.calls.push('run');
    });
    // A polling lock would never start a blocking wait: it would time out instead.
    await Promise.race([disk.waiting, ran]);
    expect(disk.calls).toEqual(['try false', 'wait']);
    await disk.close(other);
    await ran;
    expect(disk.calls).toEqual(['try false', 'wait', 'granted', 'run']);
  });

  it('after a timeout, the abandoned flock keeps later waiters queued, then gives the lock back', async () => {
    const disk = new FlockLoggingDisk();
    const other = await disk.lockFromElsewhere('/lock');
    const options = { timeoutMs: 20, fileMode: 0o600 };
    await expect(new FileLock(disk, '/lock', options).run(async () => 1)).rejects.toMatchObject({
      code: 'E_LOCK_TIMEOUT',
    });
    // The first waiter's flock is still pending: a second one must not start another blocking
    // flock (one more blocked thread-pool thread), it times out in the in-process queue.
    await expect(new FileLock(disk, '/lock', options).run(async () => 2)).rejects.toMatchObject({
      code: 'E_LOCK_TIMEOUT',
    });
    expect(disk.calls).toEqual(['try false', 'wait']);
    await disk.close(other);
    const patient = new FileLock(disk, '/lock', { timeoutMs: 5_000, fileMode: 0o600 });
    expect(await patient.run(async () => 3)).toBe(3);
    // The abandoned flock was granted, then closed at once: the next attempt found the lock free.
    expect(disk.calls).toEqual(['try false', 'wait', 'granted', 'try true']);
  });

  it('a waiter in another process blocks in flock and takes the lock when the holder releases it', async () => {
    const dir = tempDir();
    const { holder } = await holdLock(dir);
    const waiter = startWorker('lock-waiter.mjs', [dir, 10_000]);
    await waiter.waitForLine(/^waiting$/);
    holder.child.stdin?.end();
    expect((await holder.exited).stdout).toContain('released');
    const { code, stdout } = await waiter.exited;
    expect(code).toBe(0);
    expect(stdout.map((line) => line.split(' ')[0])).toEqual(['contended', 'waiting', 'acquired', 'result']);
    // One non-blocking attempt, no polling; and its update read the holder's committed one.
    expect(JSON.parse((stdout[3] as string).slice('result '.length))).toEqual({
      tries: 1,
      blocking: 1,
      sessionsBefore: 1,
    });
  });

  it('times out in the blocking wait, and the abandoned wait lets go of the lock once granted', async () => {
    const dir = tempDir();
    const waits: number[] = [];
    const recording: FileSystem = {
      ...nodeFileSystem,
      lockExclusive(fd) {
        waits.push(fd);
        return nodeFileSystem.lockExclusive(fd);
      },
    };
    const { store } = storeIn(dir, { lockTimeoutMs: 150, fileSystem: recording });
    const first = await holdLock(dir);
    const error = await store.update(() => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockAcquisitionError);
    expect(error).toMatchObject({ code: 'E_LOCK_TIMEOUT', holderPid: first.pid, timeoutMs: 150 });
    expect(waits).toHaveLength(1);
    first.holder.child.stdin?.end();
    expect((await first.holder.exited).stdout).toContain('released');
    // Our abandoned flock is granted now (or after the next holder): it must close, not keep it.
    // A leak would make this holder time out (its default 10 s) and exit without "locked".
    const third = await holdLock(dir);
    third.holder.child.stdin?.end();
    expect((await third.holder.exited).stdout).toContain('released');
    const patient = storeIn(dir, { lockTimeoutMs: 10_000, fileSystem: recording }).store;
    const after = await patient.update((state) => {
      state.total_sessions += 1;
    });
    expect(after.total_sessions).toBe(3);
  });

  it('wraps a failure to open the lock file as E_IO', async () => {
    const failing: FileSystem = {
      ...nodeFileSystem,
      open: () => Promise.reject(Object.assign(new Error('EACCES'), { code: 'EACCES' })),
    };
    const lock = new FileLock(failing, '/nonexistent/lock', { timeoutMs: 100, fileMode: 0o600 });
    await expect(lock.run(async () => 1)).rejects.toMatchObject({ code: 'E_IO', operation: 'open' });
  });
});

const LOCK_OPTIONS = { timeoutMs: 5_000, fileMode: 0o600 };

/**
 * Another FileLock on the same file under another spelling of its path: the in-process queue is
 * per path string, so only flock can keep it out, as it keeps out another process.
 */
function rivalLock(path: string, timeoutMs: number): FileLock {
  return new FileLock(nodeFileSystem, path.replace(/\/([^/]*)$/, '/./$1'), { timeoutMs, fileMode: 0o600 });
}

const count = (faulty: FaultyFileSystem, method: string) =>
  faulty.methodsCalled().filter((called) => called === method).length;

describe('the kept lock-file descriptor', () => {
  it('opens the lock file once for consecutive runs, and releases it with unlock for another process', async () => {
    const dir = tempDir();
    const lockPath = `${dir}/.agent_metrics.lock`;
    const faulty = new FaultyFileSystem();
    const lock = new FileLock(faulty.fs, lockPath, LOCK_OPTIONS);
    expect(await lock.run(async () => 1)).toBe(1);
    expect(await lock.run(async () => flockIsFree(lockPath))).toBe(false);
    expect(count(faulty, 'open')).toBe(1);
    expect(count(faulty, 'fstat')).toBe(1);
    expect(count(faulty, 'close')).toBe(0);
    expect(count(faulty, 'unlock')).toBe(2);
    // The descriptor is still open, yet the lock is free: another process takes it at once.
    const waiter = startWorker('lock-waiter.mjs', [dir, 1_000]);
    const { code, stdout } = await waiter.exited;
    expect(code).toBe(0);
    expect(JSON.parse((stdout[0] as string).slice('result '.length))).toMatchObject({
      tries: 1,
      blocking: 0,
    });
    expect(await rivalLock(lockPath, 100).run(async () => 'rival')).toBe('rival');
  });

  it('a blocking waiter is granted the lock when the holder unlocks, without a close', async () => {
    const disk = new (class extends FlockLoggingDisk {
      closes = 0;
      override async close(fd: number): Promise<void> {
        this.closes += 1;
        await super.close(fd);
      }
    })();
    await disk.mkdir('/p');
    const holder = new FileLock(disk, '/p/lock', LOCK_OPTIONS);
    let release!: () => void;
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const held = holder.run(async () => {
      started();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    await running;
    const rival = new FileLock(disk, '/p//lock', LOCK_OPTIONS).run(async () => 'rival');
    await Promise.race([disk.waiting, rival]);
    expect(disk.calls).toEqual(['try true', 'try false', 'wait']);
    release();
    await held;
    expect(await rival).toBe('rival');
    expect(disk.calls).toEqual(['try true', 'try false', 'wait', 'granted']);
    expect(disk.closes).toBe(0);
  });

  it('after close(), the next run opens the lock file again and holds the lock', async () => {
    const lockPath = `${tempDir()}/lock`;
    const faulty = new FaultyFileSystem();
    const lock = new FileLock(faulty.fs, lockPath, LOCK_OPTIONS);
    await lock.run(async () => undefined);
    expect(count(faulty, 'close')).toBe(0);
    await lock.close();
    const fdsOf = (method: string) => faulty.calls.filter((c) => c.method === method).map((c) => c.args[0]);
    expect(fdsOf('close')).toEqual(fdsOf('unlock'));
    await lock.close(); // nothing left to close
    expect(count(faulty, 'close')).toBe(1);
    expect(await lock.run(async () => flockIsFree(lockPath))).toBe(false);
    expect(count(faulty, 'open')).toBe(2);
    expect(await rivalLock(lockPath, 100).run(async () => 'rival')).toBe('rival');
  });

  it('close() during a run closes the descriptor only when the run releases the lock', async () => {
    const lockPath = `${tempDir()}/lock`;
    const faulty = new FaultyFileSystem();
    const lock = new FileLock(faulty.fs, lockPath, LOCK_OPTIONS);
    const stillHeld = await lock.run(async () => {
      await lock.close();
      return (await flockIsFree(lockPath)) === false && count(faulty, 'close') === 0;
    });
    expect(stillHeld).toBe(true);
    expect(count(faulty, 'close')).toBe(1);
    expect(await lock.run(async () => flockIsFree(lockPath))).toBe(false);
    expect(count(faulty, 'open')).toBe(2);
  });

  it('a lock file deleted between runs: the next run locks the new file, and keeps it open', async () => {
    const lockPath = `${tempDir()}/lock`;
    const faulty = new FaultyFileSystem();
    const lock = new FileLock(faulty.fs, lockPath, LOCK_OPTIONS);
    await lock.run(async () => undefined);
    rmSync(lockPath);
    writeFileSync(lockPath, '');
    const recreated = (await nodeFileSystem.stat(lockPath)).ino;
    // A rival FileLock on the new file must be kept out (a lock on the deleted inode would not).
    const rivalResult = await lock.run(() =>
      rivalLock(lockPath, 50)
        .run(async () => 'rival')
        .catch((e) => e),
    );
    expect(rivalResult).toBeInstanceOf(LockAcquisitionError);
    expect((await nodeFileSystem.stat(lockPath)).ino).toBe(recreated);
    expect(count(faulty, 'open')).toBe(2);
    expect(count(faulty, 'close')).toBe(1); // the descriptor of the deleted file
    expect(await lock.run(async () => flockIsFree(lockPath))).toBe(false);
    expect(count(faulty, 'open')).toBe(2);
    // The rival's abandoned flock was granted once we let go, then closed: the lock is free.
    expect(await rivalLock(lockPath, 5_000).run(async () => 'rival')).toBe('rival');
  });

  it('a failed unlock still releases the lock (by closing), and the run resolves with its value', async () => {
    const lockPath = `${tempDir()}/lock`;
    const faulty = new FaultyFileSystem();
    const lock = new FileLock(faulty.fs, lockPath, LOCK_OPTIONS);
    faulty.arm({ failAt: 1, code: 'EIO', methods: ['unlock'] });
    expect(await lock.run(async () => 42)).toBe(42);
    expect(faulty.injected).toBe(1);
    expect(count(faulty, 'close')).toBe(1);
    expect(await rivalLock(lockPath, 100).run(async () => 'rival')).toBe('rival');
    // The lock opens its file again and works on.
    faulty.arm(undefined);
    expect(await lock.run(async () => flockIsFree(lockPath))).toBe(false);
    expect(count(faulty, 'open')).toBe(1);
  });
});
