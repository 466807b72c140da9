import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { makeEvent, makeState } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { readJson, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

function deeplyNested(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe('retention: caps recorded in the file', () => {
  it('a store without explicit caps follows the caps a writer with explicit caps recorded', async () => {
    const dir = tempDir();
    const big = storeIn(dir, { maxEvents: 800 }).store;
    await big.save(makeState(700, 0));
    expect(readJson(big.metricsPath).retention).toEqual({ max_events: 800, max_sessions: 50 });
    const hook = storeIn(dir).store; // default options, like a CLI hook
    const saved = await hook.update((state) => {
      state.events.push(makeEvent({ event_id: 'from-hook' }));
    });
    expect(saved.events).toHaveLength(701);
    expect(saved.events.at(-1)?.event_id).toBe('from-hook');
  });

  it('explicit caps win over the recorded ones, and are recorded in turn', async () => {
    const dir = tempDir();
    await storeIn(dir, { maxEvents: 800 }).store.save(makeState(700, 0));
    const small = storeIn(dir, { maxEvents: 100, maxSessions: 3 }).store;
    const saved = await small.update(() => undefined);
    expect(saved.events).toHaveLength(100);
    await small.checkpoint();
    expect(readJson(small.metricsPath).retention).toEqual({ max_events: 100, max_sessions: 3 });
  });

  it('without any recorded caps the defaults apply, and nothing is recorded', async () => {
    const { store } = storeIn(tempDir());
    const saved = await store.save(makeState(600, 60));
    expect(saved.events).toHaveLength(500);
    expect(saved.sessions).toHaveLength(50);
    expect(readJson(store.metricsPath)).not.toHaveProperty('retention');
  });

  it('ignores a malformed retention value', async () => {
    const { store } = storeIn(tempDir());
    const state = makeState(600, 0);
    state.retention = { max_events: -3, max_sessions: 'many' };
    expect((await store.save(state)).events).toHaveLength(500);
  });
});

describe('the write path accepts only what the read path keeps', () => {
  it('rejects a state nested too deep to be written again, and writes nothing', async () => {
    const { store } = storeIn(tempDir());
    await store.save(makeState(1, 0));
    await expect(
      store.update((state) => {
        state.total_tokens = 2;
        state.plugin_data = deeplyNested(600);
      }),
    ).rejects.toMatchObject({ code: 'E_INVALID_STATE', paths: ['(root)'] });
    expect((await store.load()).total_tokens).toBe(0);
  });

  it('loads a Python file with a negative duration (clock skew) without recovery, and saves it again', async () => {
    const dir = tempDir();
    const fixture = new URL('../fixtures/python-written/.agent_metrics.json', import.meta.url);
    copyFileSync(fixture, join(dir, '.agent_metrics.json'));
    const main = readJson(join(dir, '.agent_metrics.json')) as { events: Array<Record<string, unknown>> };
    (main.events[0] as Record<string, unknown>).duration_seconds = -0.0004;
    writeFileSync(join(dir, '.agent_metrics.json'), JSON.stringify(main));
    const { store, reports } = storeIn(dir);
    const saved = await store.update((state) => {
      state.total_sessions += 1;
    });
    expect(reports).toEqual([]);
    expect(saved.events).toHaveLength(42);
    expect(saved.events[0]?.duration_seconds).toBe(-0.0004);
  });
});

describe('callbacks and options', () => {
  it('an async onRecover that rejects neither fails the load nor goes unhandled', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir);
    await store.save(makeState(1, 0));
    await store.save(makeState(2, 0));
    writeFileSync(store.metricsPath, 'corrupt');
    let called = 0;
    const withAsyncCallback = new MetricsStore({
      projectName: 'p',
      dir,
      onRecover: async () => {
        called += 1;
        throw new Error('async callback bug');
      },
    });
    // vitest fails the run on an unhandled rejection, so this also proves it is handled.
    expect((await withAsyncCallback.load()).events).toHaveLength(1);
    expect(called).toBe(1);
  });

  it('rejects a misspelled option instead of ignoring it', () => {
    expect(() => new MetricsStore({ projectName: 'p', lockTimeout: 5 } as never)).toThrow(
      /invalid MetricsStore options: .*lockTimeout/,
    );
  });
});

describe('errors that come after the rename', () => {
  it('a failed folder fsync is marked committed: the write is visible and must not be retried', async () => {
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(tempDir(), { fileSystem: faulty.fs });
    await store.save(makeState(1, 0));
    faulty.arm({ failAt: 3, code: 'EIO', methods: ['fsync'] }); // snapshot temp, journal temp, folder
    const error = await store.save(makeState(3, 0)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_IO', operation: 'fsync folder', committed: true });
    expect((await store.load()).events).toHaveLength(3);
    faulty.arm({ failAt: 1, code: 'EIO', methods: ['fsync'] });
    const before = await store.save(makeState(4, 0)).catch((e: unknown) => e);
    expect(before).toMatchObject({ code: 'E_IO', operation: 'fsync', committed: false });
  });

  it('a full disk while writing the holder pid into the lock file does not fail the write', async () => {
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(tempDir(), { fileSystem: faulty.fs });
    faulty.arm({ failAt: 1, code: 'ENOSPC', methods: ['write'] });
    await store.save(makeState(2, 0));
    expect(faulty.injected).toBe(1);
    expect(JSON.parse(readFileSync(store.metricsPath, 'utf8')).events).toHaveLength(2);
  });
});

describe('a backup that cannot be looked at', () => {
  it('is an E_IO error on load, not a reason to start from an empty state', async () => {
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(tempDir(), { fileSystem: faulty.fs });
    await store.save(makeState(1, 0));
    await store.save(makeState(2, 0));
    const { rmSync } = await import('node:fs');
    rmSync(store.metricsPath);
    faulty.arm({ failAt: 1, code: 'EACCES', methods: ['stat'] });
    await expect(store.load()).rejects.toMatchObject({ code: 'E_IO', operation: 'stat' });
    faulty.arm(undefined);
    expect((await store.load()).events).toHaveLength(1); // the .bak generation, restored
  });
});
