import { describe, expect, it } from 'vitest';
import { validateState } from '../../src/model/schema.js';
import type { DashboardState } from '../../src/model/types.js';
import { appendRecord } from '../../src/model/working-copy.js';
import { makeEvent, makeProfile, makeState } from '../helpers/builders.js';
import { storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

type Mutator = (state: DashboardState) => void;

/**
 * Runs `mutate` as an update of a saved state. Either the update is refused, or what it answers is
 * valid and a new store opened on the folder after close() (a checkpoint) reads it back unrepaired.
 */
async function expectRefusedOrKept(mutate: Mutator, setup?: Mutator) {
  const dir = tempDir();
  const { store } = storeIn(dir);
  await store.save(makeState(1, 0));
  if (setup) await store.update(setup);
  let answered: DashboardState;
  try {
    answered = await store.update(mutate);
  } catch {
    return; // refused: fine
  }
  expect(validateState(answered)).toEqual([]);
  await store.close();
  const reopened = storeIn(dir);
  const loaded = await reopened.store.load();
  expect(reopened.reports).toEqual([]);
  expect(validateState(loaded)).toEqual([]);
  return { answered, loaded };
}

describe('what is validated is the JSON form that is stored', () => {
  it('an appended event whose toJSON returns {}: refused or stored valid, never stored invalid', async () => {
    await expectRefusedOrKept((state) => {
      appendRecord(state, 'events', { ...makeEvent({ event_id: 'evt-x' }), toJSON: () => ({}) } as never);
    });
  });

  it('a new profile built on a prototype (Object.create), which JSON writes as {}: never stored invalid', async () => {
    await expectRefusedOrKept((state) => {
      state.agents.review = Object.create(makeProfile({ agent_name: 'review' }));
    });
  });

  it("a changed profile field (achievements) whose toJSON gives 'oops': never stored invalid", async () => {
    await expectRefusedOrKept((state) => {
      const coding = state.agents.coding as Record<string, unknown>;
      coding.achievements = Object.assign(['first'], { toJSON: () => 'oops' });
    });
  });

  it('save() validates the JSON form it writes: an event whose toJSON breaks it is never stored', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir);
    const state = makeState(1, 0);
    state.events = [{ ...makeEvent(), toJSON: () => ({ event_id: 'e' }) } as never];
    const saved = await store.save(state).catch(() => undefined);
    if (saved === undefined) return; // refused: fine
    const reopened = storeIn(dir);
    await reopened.store.load();
    expect(reopened.reports).toEqual([]);
  });

  it('a profile value that reads differently each time: the value validated is the value written', async () => {
    await expectRefusedOrKept((state) => {
      const coding = state.agents.coding as Record<string, unknown>;
      const stored = coding.total_tokens;
      let reads = 0;
      Object.defineProperty(coding, 'total_tokens', {
        enumerable: true,
        configurable: true,
        // jsonEqual and profileChange read it first and second; the validation reads it third.
        get: () => (++reads <= 2 ? -5 : stored),
      });
    });
  });
});

describe('keys JSON drops', () => {
  it('a root extra key whose toJSON returns undefined is dropped like undefined (as save() drops it)', async () => {
    const result = await expectRefusedOrKept(
      (state) => {
        state.notes = { toJSON: () => undefined };
      },
      (state) => {
        state.notes = 'x';
      },
    );
    expect(result?.answered).not.toHaveProperty('notes');
    expect(result?.loaded).not.toHaveProperty('notes');
  });

  it('a profile extra key whose toJSON returns undefined is dropped like undefined', async () => {
    const result = await expectRefusedOrKept(
      (state) => {
        (state.agents.coding as Record<string, unknown>).notes = { toJSON: () => undefined };
      },
      (state) => {
        (state.agents.coding as Record<string, unknown>).notes = 'y';
      },
    );
    expect(result?.answered.agents.coding).not.toHaveProperty('notes');
  });
});

describe('checks that hold (regression guards)', () => {
  it('undefined, a function and a symbol in a list of an extra key are written as null, answered as loaded', async () => {
    const result = await expectRefusedOrKept((state) => {
      (state.agents.coding as Record<string, unknown>).notes = [
        undefined,
        () => 1,
        Symbol('s'),
        { a: undefined },
      ];
      state.extra = [undefined, Number.NaN, -0, Number.POSITIVE_INFINITY];
    });
    if (!result) throw new Error('refused');
    expect((result.answered.agents.coding as Record<string, unknown>).notes).toEqual([null, null, null, {}]);
    expect(result.loaded.extra).toEqual([null, null, 0, null]);
    expect(Object.is((result.answered.extra as unknown[])[2], 0)).toBe(true);
  });

  it('NaN, Infinity and -0 in profile counters: the first two refused, -0 kept as 0', async () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const { store } = storeIn(tempDir());
      await store.save(makeState(1, 0));
      await expect(
        store.update((state) => {
          (state.agents.coding as Record<string, unknown>).total_cost_usd = value;
        }),
      ).rejects.toMatchObject({ code: 'E_INVALID_STATE' });
    }
    const result = await expectRefusedOrKept((state) => {
      (state.agents.coding as Record<string, unknown>).total_tokens = -0;
    });
    expect(Object.is(result?.answered.agents.coding?.total_tokens, 0)).toBe(true);
  });

  it('required keys removed, set to undefined or to a function are refused (root and profile)', async () => {
    const mutators: Mutator[] = [
      (state) => {
        (state.agents.coding as Record<string, unknown>).level = undefined;
      },
      (state) => {
        (state.agents.coding as Record<string, unknown>).recent_events = () => [];
      },
      (state) => {
        (state as Record<string, unknown>).project_name = Symbol('p');
      },
    ];
    for (const mutate of mutators) {
      const { store } = storeIn(tempDir());
      await store.save(makeState(1, 0));
      await expect(store.update(mutate)).rejects.toMatchObject({ code: 'E_INVALID_STATE' });
    }
  });

  it('profile and root values nested exactly to MAX_NESTING are kept; one level more is refused', async () => {
    const nest = (depth: number) => {
      let value: unknown = 1;
      for (let i = 0; i < depth; i++) value = [value];
      return value;
    };
    await expectRefusedOrKept((state) => {
      (state.agents.coding as Record<string, unknown>).deep = nest(509);
      state.deep = nest(511);
    }).then((result) => expect(result).toBeDefined());
    for (const mutate of [
      (state: DashboardState) => {
        (state.agents.coding as Record<string, unknown>).deep = nest(510);
      },
      (state: DashboardState) => {
        state.deep = nest(512);
      },
    ]) {
      const { store } = storeIn(tempDir());
      await store.save(makeState(1, 0));
      await expect(store.update(mutate)).rejects.toMatchObject({ code: 'E_INVALID_STATE' });
    }
  });

  it('a __proto__ key of a profile and of the root is kept as a key through update and reload', async () => {
    const result = await expectRefusedOrKept((state) => {
      Object.defineProperty(state.agents.coding, '__proto__', {
        value: 1,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      Object.defineProperty(state, '__proto__', {
        value: [2],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    });
    expect(Object.hasOwn(result?.loaded.agents.coding ?? {}, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(result?.loaded ?? {}, '__proto__')?.value).toEqual([2]);
  });
});
