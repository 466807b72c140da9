import { describe, expect, it } from 'vitest';
import { makeState } from '../helpers/builders.js';
import { runWorkers, startWorker } from '../helpers/child.js';
import { storeIn, tempFilesIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('concurrent writes', () => {
  it('loses no update with 100 concurrent update() calls in one process', async () => {
    const { store } = storeIn(tempDir());
    await Promise.all(
      Array.from({ length: 100 }, () =>
        store.update((state) => {
          state.total_sessions += 1;
        }),
      ),
    );
    expect((await store.load()).total_sessions).toBe(100);
  });

  it('loses no update across store instances of the same folder in one process', async () => {
    const dir = tempDir();
    const stores = [storeIn(dir).store, storeIn(dir).store, storeIn(dir).store];
    await Promise.all(
      stores.flatMap((store) =>
        Array.from({ length: 20 }, () =>
          store.update(async (state) => {
            await Promise.resolve(); // an async mutator keeps the lock across its await
            state.total_tokens += 5;
          }),
        ),
      ),
    );
    expect((await stores[0]?.load())?.total_tokens).toBe(300);
  });

  it('8 processes × 50 update() calls give exactly 400, none lost per process', async () => {
    const dir = tempDir();
    const names = Array.from({ length: 8 }, (_, i) => `w${i}`);
    await runWorkers(
      'store-increment.mjs',
      names.map((name) => [dir, 50, name]),
    );
    const { store, reports } = storeIn(dir);
    const state = await store.load();
    expect(state.total_sessions).toBe(400);
    expect(state.per_worker).toEqual(Object.fromEntries(names.map((name) => [name, 50])));
    expect(reports).toEqual([]);
    expect(tempFilesIn(dir)).toEqual([]);
  });

  it('readers without a lock never see a half-written main file while processes write', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir);
    await store.save(makeState(400, 0)); // a file big enough to take several write calls
    const reader = startWorker('raw-reader.mjs', [store.metricsPath]);
    await reader.waitForLine(/^ready$/);
    await runWorkers('store-increment.mjs', [
      [dir, 40, 'a'],
      [dir, 40, 'b'],
    ]);
    reader.child.stdin?.end();
    const { stdout } = await reader.exited;
    const summary = JSON.parse(stdout.at(-1) as string);
    expect(summary.reads).toBeGreaterThan(0);
    expect(summary).toMatchObject({ bad: 0, missing: 0 });
    expect((await store.load()).total_sessions).toBe(80);
  });
});
