import { describe, expect, it } from 'vitest';
import type { MetricsBackend } from '../../src/store/backend.js';
import { MemoryBackend } from '../../src/store/memory-backend.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { mutatorsRunning } from '../../src/store/mutator-guard.js';
import { makeEvent } from '../helpers/builders.js';
import { storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

// The plain case, an update from inside a mutator of the same backend, is in backend-contract.test.ts.
const REFUSED = {
  code: 'E_CONFLICT',
  message: expect.stringContaining('from inside a mutator of the same store'),
};

/** A promise and the function that resolves it: to hold a mutator at a chosen point. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** An update whose async mutator has started and holds until `release()`: a batch kept busy. */
async function heldUpdate(
  store: Pick<MetricsStore, 'update'>,
): Promise<{ running: Promise<unknown>; release: () => void }> {
  const held = gate();
  const entered = gate();
  const running = store.update(async () => {
    entered.open();
    await held.opened;
  });
  await entered.opened;
  return { running, release: held.open };
}

describe('a call on the store from inside one of its own mutators', () => {
  it('is refused at once for recordEvent, commit, checkpoint and close after an await; the mutator may go on', async () => {
    const { store } = storeIn(tempDir());
    const seen: unknown[] = [];
    await store.update(async (state) => {
      state.total_tokens = 5;
      await new Promise((resolve) => setImmediate(resolve));
      for (const call of [
        () => store.recordEvent(makeEvent()),
        () => store.commit(() => undefined),
        () => store.checkpoint(),
        () => store.close(),
      ]) {
        seen.push(await call().catch((error: unknown) => error));
      }
    });
    expect(seen).toHaveLength(4);
    for (const error of seen) expect(error).toMatchObject(REFUSED);
    expect(String((seen[2] as Error).message)).toMatch(/^checkpoint\(\) from inside/);
    const state = await store.load();
    expect(state.total_tokens).toBe(5);
    expect(state.events).toHaveLength(0);
    await store.close();
  });

  it('is refused when it comes back through a mutator of another store that the first one awaits', async () => {
    const a = storeIn(tempDir()).store;
    const b = storeIn(tempDir()).store;
    // b's mutator async and awaiting the call back into a; then a plain one that fires it while
    // b is busy with another caller's batch.
    const asyncCycle = a.update(async (state) => {
      state.total_tokens = 1;
      await b.update(async (inner) => {
        inner.total_tokens = 1;
        await new Promise((resolve) => setImmediate(resolve));
        await a.commit(() => undefined);
      });
    });
    await expect(asyncCycle).rejects.toMatchObject(REFUSED);
    const { running: busy, release: releaseB } = await heldUpdate(b);
    let fired: Promise<unknown> | undefined;
    const plainCycle = a.update(async () => {
      const queued = b.update(() => {
        fired = a.commit(() => undefined).catch((error: unknown) => error);
      });
      releaseB();
      await queued;
    });
    await Promise.all([busy, plainCycle]);
    expect(await fired).toMatchObject(REFUSED);
    expect((await a.load()).total_tokens).toBe(0);
    expect((await b.load()).total_tokens).toBe(0);
    await Promise.all([a.close(), b.close()]);
  });

  it('is refused when it comes back through a mutator that a plain one returned the promise of', async () => {
    const a = storeIn(tempDir()).store;
    const b = storeIn(tempDir()).store;
    let back: unknown;
    await a.update(() =>
      b.commit(async () => {
        await new Promise((resolve) => setImmediate(resolve));
        back = await a.commit(() => undefined).catch((error: unknown) => error);
      }),
    );
    expect(back).toMatchObject(REFUSED);
    await Promise.all([a.close(), b.close()]);
  });

  it.each([
    ['MetricsStore', (): MetricsBackend & { close?: () => Promise<void> } => storeIn(tempDir()).store],
    ['MemoryBackend', (): MetricsBackend & { close?: () => Promise<void> } => new MemoryBackend('p')],
  ] as const)(
    'is refused from the promise a plain mutator returns (%s): an async helper, a wrapper, compiled async, trackAgent',
    async (_, open) => {
      const { AgentMetrics } = await import('../../src/index.js');
      const store = open();
      const metrics = new AgentMetrics({ store, strict: true });
      const afterATurn = () => new Promise<void>((resolve) => setImmediate(resolve));
      const writeBack = async () => {
        await afterATurn();
        await store.commit?.(() => undefined);
      };
      const wrap = (fn: (state: unknown) => Promise<void>) => (state: unknown) => fn(state);
      const cases: Array<[string, (state: unknown) => void | Promise<void>]> = [
        ['an async helper', () => writeBack()],
        ['a wrapper around an async function', wrap(async () => writeBack())],
        [
          'an async function compiled to a generator',
          compiledAsync(function* () {
            yield afterATurn();
            yield store.commit?.(() => undefined);
          }),
        ],
        ['trackAgent', () => metrics.trackAgent({ agentName: 'a' }, afterATurn)],
      ];
      for (const [name, mutator] of cases) {
        const error = await store.update(mutator).catch((caught: unknown) => caught);
        expect(error, name).toMatchObject(REFUSED);
      }
      expect((await store.load()).events).toHaveLength(0);
      await store.close?.();
    },
  );

  it('is refused for save() too', async () => {
    const { store } = storeIn(tempDir());
    let error: unknown;
    await store.update(async (state) => {
      state.total_tokens = 2;
      error = await store.save(state).catch((caught: unknown) => caught);
    });
    expect(error).toMatchObject({ ...REFUSED, message: expect.stringMatching(/^save\(\) from inside/) });
    expect((await store.load()).total_tokens).toBe(2);
    await store.close();
  });

  it('is refused through AgentMetrics too: strict throws E_CONFLICT, otherwise onError gets it', async () => {
    const { AgentMetrics } = await import('../../src/index.js');
    const { store } = storeIn(tempDir());
    const errors: unknown[] = [];
    const lenient = new AgentMetrics({ store, onError: (error) => errors.push(error) });
    const strict = new AgentMetrics({ store, strict: true });
    const event = { agentName: 'a', status: 'success' as const };
    let strictError: unknown;
    await store.update(async () => {
      await lenient.recordEvent(event);
      strictError = await strict.recordEvent(event).catch((error: unknown) => error);
    });
    expect(errors).toEqual([expect.objectContaining(REFUSED)]);
    expect(strictError).toMatchObject(REFUSED);
    expect((await store.load()).events).toHaveLength(0);
    await store.close();
  });
});

describe('calls made while a mutator runs, not from it', () => {
  it('wait for it as before, however long it runs, even with lockTimeoutMs 0; close() too', async () => {
    const store = new MetricsStore({ projectName: 'p', dir: tempDir(), lockTimeoutMs: 0 });
    const entered = gate();
    const release = gate();
    const slow = store.update(async (state) => {
      state.total_tokens = 10;
      entered.open();
      await release.opened;
    });
    await entered.opened;
    const other = store.update((state) => {
      state.total_tokens += 1;
    });
    const closed = store.close();
    // Not synchronisation: a chance for any timer (a lock timeout of 0 ms) to fire while the
    // mutator is held; nothing may give up meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 5));
    release.open();
    await Promise.all([slow, other, closed]);
    expect((await store.load()).total_tokens).toBe(11);
    await store.close();
  });

  it("from another caller's batch of a second store, whose loop of batches a mutator started, are made", async () => {
    const a = storeIn(tempDir()).store;
    const b = storeIn(tempDir()).store;
    const bHeld = gate();
    const bEntered = gate();
    const aHeld = gate();
    const outer = a.update(async (state) => {
      state.total_tokens = 1;
      // From inside a's mutator: starts b's loop of batches, and holds its first batch.
      await b.update(async () => {
        bEntered.open();
        await bHeld.opened;
      });
      await aHeld.opened;
    });
    await bEntered.opened;
    const fromB: Promise<unknown>[] = [];
    const writeToA = () => {
      const write = a.commit((state) => {
        state.total_tokens += 10;
      });
      fromB.push(
        write.then(
          () => 'made',
          (error: unknown) => error,
        ),
      );
    };
    // Another caller's update of b, taken by that loop's next batch: its writes to a only have to
    // wait for a's mutator, which awaits nothing of them. One from its synchronous part, one from
    // what its promise does after an await (which runs in the context of b's loop).
    const second = b.update(() => {
      writeToA();
      return (async () => {
        await null;
        writeToA();
      })();
    });
    bHeld.open();
    await second;
    aHeld.open();
    await outer;
    expect(await Promise.all(fromB)).toEqual(['made', 'made']);
    expect((await a.load()).total_tokens).toBe(21);
    await Promise.all([a.close(), b.close()]);
  });

  it('come back from mutators that an ended mutator started, or from tasks they left, and are made', async () => {
    const a = storeIn(tempDir()).store;
    const b = storeIn(tempDir()).store;
    const made = (write: Promise<void>) =>
      write.then(
        () => 'made',
        (error: unknown) => error,
      );
    const addTokens = (count: number) => (state: { total_tokens: number }) => {
      state.total_tokens += count;
    };
    // A plain mutator of a fires an update of b and ends; b's mutator then calls a.
    let fromFired: Promise<unknown> | undefined;
    let fired: Promise<unknown> | undefined;
    await a.update(() => {
      fired = b.update(async () => {
        await new Promise((resolve) => setImmediate(resolve));
        fromFired = made(a.commit(addTokens(1)));
      });
    });
    await fired;
    // An async mutator of a awaits b's, which leaves a task that calls a once b's has ended,
    // while a's still runs: that call waits for a's mutator, which does not wait for it.
    const leftGo = gate();
    const aHeld = gate();
    let fromLeft: Promise<unknown> | undefined;
    const outer = a.update(async () => {
      await b.update(async () => {
        void (async () => {
          await leftGo.opened;
          fromLeft = made(a.commit(addTokens(10)));
        })();
      });
      leftGo.open();
      await aHeld.opened;
    });
    await leftGo.opened;
    await new Promise((resolve) => setImmediate(resolve));
    aHeld.open();
    await outer;
    expect(await fromFired).toBe('made');
    expect(await fromLeft).toBe('made');
    expect((await a.load()).total_tokens).toBe(11);
    await Promise.all([a.close(), b.close()]);
  });

  it('come back from a mutator that one which threw had started, and are made', async () => {
    const a = storeIn(tempDir()).store;
    const b = storeIn(tempDir()).store;
    // Thrown by the mutator itself, or by the `then` getter of what it returns.
    const throwers = [
      () => {
        throw new Error('thrown');
      },
      () =>
        ({
          // biome-ignore lint/suspicious/noThenProperty: a thenable whose `then` throws is the case under test
          get then() {
            throw new Error('thrown');
          },
        }) as unknown as Promise<void>,
    ];
    for (const thrower of throwers) {
      const release = gate();
      let back: Promise<unknown> | undefined;
      let fired: Promise<void> | undefined;
      const failed = a.update(() => {
        fired = b.commit(async () => {
          await release.opened;
          back = a
            .commit(() => undefined)
            .then(
              () => 'made',
              (error: unknown) => error,
            );
        });
        return thrower();
      });
      await expect(failed).rejects.toThrow('thrown');
      release.open();
      await fired;
      expect(await back).toBe('made');
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('from a task that an ended mutator left running are made, while a later mutator runs', async () => {
    const { store } = storeIn(tempDir());
    const later = gate();
    let leftWrite: Promise<void> | undefined;
    await store.update(async () => {
      // Left running: it writes once `later` opens, after this mutator has ended.
      void (async () => {
        await later.opened;
        leftWrite = store.commit((state) => {
          state.total_tokens += 100;
        });
      })();
    });
    const entered = gate();
    const release = gate();
    const running = store.update(async (state) => {
      state.total_tokens += 1;
      entered.open();
      await release.opened;
    });
    await entered.opened;
    later.open();
    await new Promise((resolve) => setImmediate(resolve));
    release.open();
    await running;
    await leftWrite;
    expect((await store.load()).total_tokens).toBe(101);
    await store.close();
  });
});

describe('the AsyncLocalStorage that mutators run in', () => {
  it('is on while a mutator runs and off once none does, however each ended', async () => {
    const { store } = storeIn(tempDir());
    const { running, release } = await heldUpdate(store);
    expect(mutatorsRunning()).toBe(1);
    release();
    await running;
    const endings: Array<(state: unknown) => unknown> = [
      () => undefined,
      async () => undefined,
      () => {
        throw new Error('thrown');
      },
      async () => {
        throw new Error('rejected');
      },
      () => Promise.reject(new Error('rejected')),
      () => ({
        // biome-ignore lint/suspicious/noThenProperty: a thenable whose `then` throws is one of the endings
        get then() {
          throw new Error('a then getter that throws');
        },
      }),
    ];
    for (const mutate of endings) {
      await store.update(mutate as (state: unknown) => void).catch(() => undefined);
      expect(mutatorsRunning()).toBe(0);
    }
    await store.close();
  });
});

/** `body` run as TypeScript runs an `async` function compiled for an older target: a generator stepped by promises. */
function compiledAsync(body: () => Generator<unknown, void, unknown>): () => Promise<void> {
  return () =>
    new Promise<void>((resolve, reject) => {
      const steps = body();
      const step = (value?: unknown) => {
        const next = steps.next(value);
        if (next.done) resolve();
        else Promise.resolve(next.value).then(step, reject);
      };
      step();
    });
}
