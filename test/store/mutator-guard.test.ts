import { describe, expect, it } from 'vitest';
import { LockAcquisitionError } from '../../src/errors.js';
import { makeEvent } from '../helpers/builders.js';
import { storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const WHY = 'a mutator of this store is still running, and a write awaited inside a mutator waits for it';

/** A store whose waits on a running mutator end after 150 ms. */
function guardedStore() {
  return { store: storeIn(tempDir(), { lockTimeoutMs: 150 }).store };
}

async function rejection(promise: Promise<unknown>): Promise<LockAcquisitionError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(LockAcquisitionError);
  return error as LockAcquisitionError;
}

// The plain case, an update awaited inside a mutator, is in backend-contract.test.ts.
describe('a write that a mutator awaits on its own store', () => {
  it('fails with E_LOCK_TIMEOUT naming the cause, also when it comes after the mutator awaited something else', async () => {
    const { store } = guardedStore();
    const error = await rejection(
      store.commit(async () => {
        await new Promise((resolve) => setImmediate(resolve));
        await store.recordEvent(makeEvent());
      }),
    );
    expect(error.code).toBe('E_LOCK_TIMEOUT');
    expect(error.message).toContain(WHY);
    expect(error.holderPid).toBe(process.pid);
    expect((await store.load()).events).toHaveLength(0);
    await store.close();
  });

  it('lets a mutator that handles the error finish: its own change is written, the awaited one is not', async () => {
    const { store } = guardedStore();
    let seen: unknown;
    await store.update(async (state) => {
      state.total_tokens = 5;
      await store.recordEvent(makeEvent()).catch((error: unknown) => {
        seen = error;
      });
    });
    expect(seen).toBeInstanceOf(LockAcquisitionError);
    const state = await store.load();
    expect(state.total_tokens).toBe(5);
    expect(state.events).toHaveLength(0);
    await store.close();
  });

  it('bounds checkpoint() and close() awaited inside a mutator too', async () => {
    const { store } = guardedStore();
    await store.update((state) => {
      state.total_tokens = 1;
    });
    for (const call of [() => store.checkpoint(), () => store.close()]) {
      const error = await rejection(
        store.update(async () => {
          await call();
        }),
      );
      expect(error.message).toContain(WHY);
    }
    // Nothing was released under the running batch: the store writes and closes as before.
    await store.update((state) => {
      state.total_tokens = 2;
    });
    await store.close();
    expect((await store.load()).total_tokens).toBe(2);
  });
});

describe('writes made while a mutator runs, which it does not await', () => {
  it('are written after it, with no error: a write fired from a mutator', async () => {
    const { store } = guardedStore();
    let fired: Promise<void> | undefined;
    await store.update((state) => {
      state.total_tokens = 3;
      fired = store.recordEvent(makeEvent());
    });
    await fired;
    const state = await store.load();
    expect(state.total_tokens).toBe(3 + makeEvent().total_tokens);
    expect(state.events).toHaveLength(1);
    await store.close();
  });

  it('from another caller, while a slow mutator ends within the timeout', async () => {
    const { store } = storeIn(tempDir(), { lockTimeoutMs: 2_000 });
    let entered!: () => void;
    const inMutator = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let finish!: () => void;
    const slow = store.update(async (state) => {
      state.total_tokens = 10;
      entered();
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
    });
    await inMutator;
    const other = store.update((state) => {
      state.total_tokens += 1;
    });
    finish();
    await Promise.all([slow, other]);
    expect((await store.load()).total_tokens).toBe(11);
    await store.close();
  });
});
