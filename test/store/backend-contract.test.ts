import { describe, expect, it } from 'vitest';
import { InvalidInputError, StateValidationError } from '../../src/errors.js';
import { recordEvent } from '../../src/model/record-event.js';
import type { MetricsBackend } from '../../src/store/backend.js';
import { MemoryBackend } from '../../src/store/memory-backend.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { makeEvent } from '../helpers/builders.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The contract every backend keeps (design.md §4): the domain layer relies on exactly this, so a
 * new backend (a database, say) is added to `backends` and must pass the same tests.
 */
const backends: Array<[string, (projectName: string) => MetricsBackend]> = [
  ['MetricsStore (JSON file)', (projectName) => new MetricsStore({ projectName, dir: tempDir() })],
  ['MemoryBackend', (projectName) => new MemoryBackend(projectName)],
];

describe.each(backends)('backend contract: %s', (_name, create) => {
  it('starts from an empty state of the project', async () => {
    const backend = create('contract');
    const state = await backend.load();
    expect(backend.projectName).toBe('contract');
    expect(state).toMatchObject({ project_name: 'contract', total_sessions: 0, events: [], agents: {} });
  });

  it('update returns the saved state, which later loads return', async () => {
    const backend = create('contract');
    const before = Date.now();
    const saved = await backend.update((state) => {
      state.total_tokens = 42;
      state.events.push(makeEvent({ event_id: 'a' }));
    });
    expect(saved.total_tokens).toBe(42);
    expect(Date.parse(saved.updated_at)).toBeGreaterThanOrEqual(before - 1);
    expect(await backend.load()).toEqual(saved);
  });

  it('removes a root key or a profile that a mutator sets to undefined (JSON has no undefined)', async () => {
    const backend = create('contract');
    await backend.update((state) => {
      state.note = 'kept for now';
      recordEvent(state, makeEvent({ event_id: 'a', agent_name: 'coding' }));
      recordEvent(state, makeEvent({ event_id: 'b', agent_name: 'review' }));
    });
    const saved = await backend.update((state) => {
      state.note = undefined;
      (state.agents as Record<string, unknown>).coding = undefined;
    });
    expect(Object.hasOwn(saved, 'note')).toBe(false);
    expect(Object.keys(saved.agents)).toEqual(['review']);
    expect(await backend.load()).toEqual(saved);
  });

  it('keeps what JSON keeps of a value a mutator sets, and refuses what JSON cannot hold', async () => {
    const backend = create('contract');
    const saved = await backend.update((state) => {
      state.extra = {
        gone: undefined,
        list: [1, undefined, Number.NaN],
        when: new Date(0),
        map: new Map([[1, 2]]),
        zero: -0,
      };
    });
    const kept = { list: [1, null, null], when: '1970-01-01T00:00:00.000Z', map: {}, zero: 0 };
    expect(saved.extra).toStrictEqual(kept);
    expect(Object.is((saved.extra as { zero: number }).zero, 0)).toBe(true);
    expect((await backend.load()).extra).toStrictEqual(kept);
    for (const value of [1n, { self: {} }]) {
      if (typeof value === 'object') value.self = value;
      await expect(
        backend.update((state) => {
          state.extra = value;
        }),
      ).rejects.toMatchObject({ code: 'E_INVALID_STATE', message: /cannot be written as JSON/ });
    }
    expect((await backend.load()).extra).toStrictEqual(kept);
  });

  it('refuses a profile that is not one under the names valibot records skip (__proto__, prototype, constructor)', async () => {
    const backend = create('contract');
    for (const name of ['__proto__', 'prototype', 'constructor']) {
      await expect(
        backend.update((state) => {
          Object.defineProperty(state.agents, name, {
            value: 7,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }),
      ).rejects.toMatchObject({ code: 'E_INVALID_STATE', issues: [{ path: `agents.${name}` }] });
    }
    expect((await backend.load()).agents).toEqual({});
  });

  it('commit writes as update does, and resolves to nothing; its failures reach the caller', async () => {
    const backend = create('contract');
    expect(backend.commit).toBeTypeOf('function');
    const committed = await backend.commit?.((state) => {
      state.total_tokens = 7;
      state.events.push(makeEvent({ event_id: 'c' }));
    });
    expect(committed).toBeUndefined();
    const loaded = await backend.load();
    expect(loaded.total_tokens).toBe(7);
    expect(loaded.events.map((event) => event.event_id)).toEqual(['c']);
    const boom = new Error('mutator failed');
    await expect(
      backend.commit?.(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await backend.load()).toEqual(loaded);
  });

  it('recordEvent records as a commit of recordEvent does; an invalid change is rejected, writing nothing', async () => {
    const backend = create('contract');
    const expected = create('contract');
    const first = makeEvent({ event_id: 'r1', agent_name: 'coding', total_tokens: 30, input_tokens: 30 });
    const second = makeEvent({ event_id: 'r2', agent_name: 'coding', status: 'error', error_message: 'x' });
    for (const event of [first, second]) {
      await backend.recordEvent?.(event);
      await expected.commit?.((state) => recordEvent(state, event));
    }
    const { updated_at: _at, created_at: _created, ...recorded } = await backend.load();
    const { updated_at: _expectedAt, created_at: _expectedCreated, ...wanted } = await expected.load();
    expect(recorded).toEqual(wanted);
    expect(recorded.agents.coding).toMatchObject({
      total_invocations: 2,
      failed_invocations: 1,
    });

    await backend.update((state) => {
      state.total_tokens = Number.MAX_SAFE_INTEGER;
    });
    const before = await backend.load();
    await expect(
      backend.recordEvent?.(makeEvent({ event_id: 'r3', total_tokens: 5 })),
    ).rejects.toBeInstanceOf(InvalidInputError);
    expect(await backend.load()).toEqual(before);
  });

  it('a mutator that throws changes nothing, and its error reaches the caller', async () => {
    const backend = create('contract');
    await backend.update((state) => {
      state.total_tokens = 1;
    });
    await expect(
      backend.update((state) => {
        state.total_tokens = 99;
        throw new Error('halfway');
      }),
    ).rejects.toThrow('halfway');
    expect((await backend.load()).total_tokens).toBe(1);
  });

  it('rejects a mutation that breaks the format with the bad path, and keeps the old state', async () => {
    const backend = create('contract');
    const error = await backend
      .update((state) => {
        (state as Record<string, unknown>).total_sessions = 'three';
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateValidationError);
    expect((error as StateValidationError).paths).toEqual(['total_sessions']);
    expect((await backend.load()).total_sessions).toBe(0);
  });

  it('serialises concurrent updates: none is lost', async () => {
    const backend = create('contract');
    await Promise.all(
      Array.from({ length: 50 }, () =>
        backend.update(async (state) => {
          const seen = state.total_sessions;
          await Promise.resolve();
          state.total_sessions = seen + 1;
        }),
      ),
    );
    expect((await backend.load()).total_sessions).toBe(50);
  });

  it('keeps the newest events up to the caps, and extra root keys as they are', async () => {
    const backend = create('contract');
    const saved = await backend.update((state) => {
      state.events = Array.from({ length: 520 }, (_, i) => makeEvent({ event_id: `e${i}` }));
      state.plugin = { nested: [1, 'two'] };
    });
    expect(saved.events).toHaveLength(500);
    expect(saved.events[0]?.event_id).toBe('e20');
    expect((await backend.load()).plugin).toEqual({ nested: [1, 'two'] });
  });

  it('refuses at once an update from inside a mutator of the same backend (E_CONFLICT), which would wait for it forever', async () => {
    const backend = create('contract');
    const other = create('other');
    const refused = {
      code: 'E_CONFLICT',
      message: expect.stringContaining('from inside a mutator of the same store'),
    };
    // Before the mutator's first await, and after one.
    for (const awaitFirst of [false, true]) {
      const outer = backend.update(async (state) => {
        state.total_tokens = 1;
        if (awaitFirst) await new Promise((resolve) => setImmediate(resolve));
        await backend.update((inner) => {
          inner.total_tokens = 2;
        });
      });
      await expect(outer).rejects.toMatchObject(refused);
    }
    // From a plain mutator too: it cannot await the write, but it could return it.
    let fired: Promise<unknown> | undefined;
    await backend.update((state) => {
      state.total_tokens = 3;
      fired = backend.update(() => undefined).catch((error: unknown) => error);
    });
    expect(await fired).toMatchObject(refused);
    expect((await backend.load()).total_tokens).toBe(3);
    // A call that comes back through another backend's mutator, which this one awaits.
    const cycle = backend.update(async () => {
      await other.update(async () => {
        await new Promise((resolve) => setImmediate(resolve));
        await backend.update(() => undefined);
      });
    });
    await expect(cycle).rejects.toMatchObject(refused);
    // Another backend's update from inside a mutator is no such cycle: it is made.
    await backend.update(async (state) => {
      await other.update((inner) => {
        inner.total_tokens = 5;
      });
      state.total_tokens = 4;
    });
    expect((await backend.load()).total_tokens).toBe(4);
    expect((await other.load()).total_tokens).toBe(5);
  });

  it('hands out copies: changing a loaded state does not change the stored one', async () => {
    const backend = create('contract');
    const loaded = await backend.load();
    loaded.total_tokens = 7;
    expect((await backend.load()).total_tokens).toBe(0);
  });
});

describe('MemoryBackend', () => {
  it('starts from a copy of a given state', async () => {
    const initial = new MemoryBackend('x');
    const state = await initial.update((s) => {
      s.total_tokens = 3;
    });
    const copy = new MemoryBackend(state);
    state.total_tokens = 100;
    expect(copy.projectName).toBe('x');
    expect((await copy.load()).total_tokens).toBe(3);
  });
});
