// Mutators that replace or remove the containers of a working copy, where the lazy copies must
// step aside: the store must do what the in-memory backend (the reference) does.
import { describe, expect, it } from 'vitest';
import type { DashboardState } from '../../src/model/types.js';
import { MemoryBackend } from '../../src/store/memory-backend.js';
import { makeProfile, makeState } from '../helpers/builders.js';
import { storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

async function seeded() {
  const dir = tempDir();
  const { store } = storeIn(dir);
  await store.save(makeState(3, 1));
  return { dir, store };
}

describe('mutators replacing containers of the working copy', () => {
  it('delete + re-add of events clears them (as with the memory backend)', async () => {
    const { dir, store } = await seeded();
    await store.update((s) => {
      delete (s as Partial<DashboardState>).events;
      s.events = [];
    });
    expect((await storeIn(dir).store.load()).events).toHaveLength(0);
  });

  it('assigning the agents of an earlier load restores them', async () => {
    const { dir, store } = await seeded();
    const earlier = await store.load();
    await store.update((s) => {
      (s.agents.coding as { total_tokens: number }).total_tokens = 999;
      s.agents.other = makeProfile();
    });
    await store.update((s) => {
      s.agents = earlier.agents;
    });
    const loaded = await storeIn(dir).store.load();
    expect(Object.keys(loaded.agents)).toEqual(['coding']);
    expect(loaded.agents.coding?.total_tokens).toBe(1200);
  });

  it('events deleted, or replaced by a string, are rejected naming the path', async () => {
    const { store } = await seeded();
    await expect(
      store.update((s) => {
        delete (s as Partial<DashboardState>).events;
      }),
    ).rejects.toMatchObject({
      code: 'E_INVALID_STATE',
      issues: [expect.objectContaining({ path: 'events' })],
    });
    await expect(
      store.update((s) => {
        (s as Record<string, unknown>).sessions = 'none';
      }),
    ).rejects.toMatchObject({
      code: 'E_INVALID_STATE',
      issues: [expect.objectContaining({ path: 'sessions' })],
    });
    expect((await store.load()).events).toHaveLength(3);
  });

  it('agents replaced by an array is rejected, as the memory backend rejects it', async () => {
    const memory = new MemoryBackend(makeState(3, 1));
    const bad = (s: DashboardState) => {
      (s as Record<string, unknown>).agents = Object.values(s.agents);
    };
    await expect(memory.update(bad)).rejects.toMatchObject({ code: 'E_INVALID_STATE' });
    const { store } = await seeded();
    await expect(store.update(bad)).rejects.toMatchObject({ code: 'E_INVALID_STATE' });
  });
});
