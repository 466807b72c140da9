import { describe, expect, it } from 'vitest';
import { createProfile } from '../../src/model/record-event.js';
import type { DashboardState } from '../../src/model/types.js';
import { storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

// `agents` of a state handed out is made at its first read (model/working-copy.ts): until then an
// accessor, then a plain value, as it was before that change.
async function seeded() {
  const dir = tempDir();
  const { store } = storeIn(dir, { projectName: 'p' });
  await store.update((state) => {
    state.agents.a = createProfile('a');
    state.agents.b = createProfile('b');
  });
  return { dir, store };
}

describe('a state’s agents, made at the first read', () => {
  it('equals the plain state, whole or cloned', async () => {
    const { store } = await seeded();
    const state = await store.load();
    const plain = JSON.parse(JSON.stringify(state));
    expect(state).toStrictEqual(plain);
    expect(structuredClone(await store.load())).toStrictEqual(plain);
    expect({ ...(await store.load()) }).toStrictEqual(plain);
  });

  it('is a writable data property once read, and a frozen state refuses a new one', async () => {
    const { store } = await seeded();
    const state = await store.load();
    expect(Object.keys(state.agents)).toEqual(['a', 'b']);
    expect(Object.getOwnPropertyDescriptor(state, 'agents')).toMatchObject({
      writable: true,
      enumerable: true,
    });
    const frozen = Object.freeze(await store.load());
    expect(() => {
      (frozen as DashboardState).agents = {};
    }).toThrow(TypeError);
    expect(Object.keys(frozen.agents)).toEqual(['a', 'b']);
    expect(Object.keys(frozen.agents)).toEqual(['a', 'b']);
  });

  it('is not shared with a clone made from the property descriptors', async () => {
    const { store } = await seeded();
    const state = await store.load();
    const clone = Object.defineProperties({}, Object.getOwnPropertyDescriptors(state)) as DashboardState;
    clone.agents = {};
    expect(Object.keys(state.agents)).toEqual(['a', 'b']);
    const read = Object.defineProperties(
      {},
      Object.getOwnPropertyDescriptors(await store.load()),
    ) as DashboardState;
    delete read.agents.a;
    expect(Object.keys(state.agents)).toEqual(['a', 'b']);
  });

  it('keeps a redefinition after a read writable, as a data property does', async () => {
    const { dir, store } = await seeded();
    await store.update((state) => {
      const b = state.agents.b;
      Object.defineProperty(state, 'agents', { value: { a: state.agents.a } });
      state.agents = { b } as DashboardState['agents'];
    });
    expect(Object.keys((await storeIn(dir, { projectName: 'p' }).store.load()).agents)).toEqual(['b']);
  });

  it('is not changed through an object inheriting from a state, nor through a clone of a frozen one', async () => {
    const { store } = await seeded();
    const frozen = Object.freeze(await store.load());
    expect(() => {
      (Object.create(frozen) as DashboardState).agents = {};
    }).toThrow(TypeError);
    const clone = Object.defineProperties({}, Object.getOwnPropertyDescriptors(frozen)) as DashboardState;
    clone.agents = {};
    expect(Object.keys(clone.agents)).toEqual([]);
    expect(Object.keys(frozen.agents)).toEqual(['a', 'b']);

    const state = await store.load();
    const derived = Object.create(state) as DashboardState;
    expect(Object.keys(derived.agents)).toEqual(['a', 'b']);
    derived.agents = {};
    expect(Object.hasOwn(derived, 'agents')).toBe(true);
    expect(Object.keys(state.agents)).toEqual(['a', 'b']);
    // Through an object inheriting from a state whose agents were not read yet.
    const unread = await store.load();
    const child = Object.create(unread) as DashboardState;
    child.agents = {};
    expect(Object.hasOwn(child, 'agents')).toBe(true);
    expect(Object.keys(unread.agents)).toEqual(['a', 'b']);
    const fixed = Object.preventExtensions(Object.create(await store.load())) as DashboardState;
    expect(() => {
      fixed.agents = {};
    }).toThrow(/not extensible/);
    const sealed = Object.seal(await store.load());
    sealed.agents = {};
    expect(Object.keys(sealed.agents)).toEqual([]);
  });
});
