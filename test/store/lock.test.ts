import { rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LockAcquisitionError } from '../../src/errors.js';
import type { FileSystem } from '../../src/store/file-system.js';
import { nodeFileSystem } from '../../src/store/file-system.js';
import { FileLock } from '../../src/store/lock.js';
import { makeState } from '../helpers/builders.js';
import { startWorker } from '../helpers/child.js';
import { corruptFilesIn, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A worker process that holds the lock of `dir` until its stdin closes. */
async function holdLock(dir: string) {
  const holder = startWorker('lock-holder.mjs', [dir]);
  const line = await holder.waitForLine(/^locked \d+$/);
  return { holder, pid: Number(line.split(' ')[1]) };
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
    let refused!: () => void;
    const lockRefused = new Promise<void>((resolve) => {
      refused = resolve;
    });
    // Tells us when the waiter has really found the lock taken, so the kill happens while it waits.
    const watching: FileSystem = {
      ...nodeFileSystem,
      async tryLockExclusive(fd) {
        const taken = await nodeFileSystem.tryLockExclusive(fd);
        if (!taken) refused();
        return taken;
      },
    };
    const { store } = storeIn(dir, { lockTimeoutMs: 5_000, fileSystem: watching });
    const { holder } = await holdLock(dir);
    const waiting = store.update((state) => {
      state.total_sessions += 1;
    });
    await lockRefused;
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
    // The holder's own save found the corrupt main, moved it aside and wrote its state.
    expect(corruptFilesIn(dir)).toHaveLength(1);
    expect((await store.load()).events).toHaveLength(2);
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

  it('wraps a failure to open the lock file as E_IO', async () => {
    const failing: FileSystem = {
      ...nodeFileSystem,
      open: () => Promise.reject(Object.assign(new Error('EACCES'), { code: 'EACCES' })),
    };
    const lock = new FileLock(failing, '/nonexistent/lock', { timeoutMs: 100, fileMode: 0o600 });
    await expect(lock.run(async () => 1)).rejects.toMatchObject({ code: 'E_IO', operation: 'open' });
  });
});
