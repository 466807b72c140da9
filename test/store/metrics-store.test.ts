import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MetricsError, StateValidationError } from '../../src/errors.js';
import type { DashboardState } from '../../src/model/types.js';
import { type FileSystem, nodeFileSystem } from '../../src/store/file-system.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { makeEvent, makeProfile, makeState } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { corruptFilesIn, readJson, storeIn, tempFilesIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('validation on save', () => {
  it('rejects an invalid state naming every bad path, and writes nothing', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir);
    await store.save(makeState(2, 0));
    const before = readFileSync(store.metricsPath);
    const bad = makeState(5, 1);
    (bad.events[3] as Record<string, unknown>).status = 'exploded';
    (bad.sessions[0] as Record<string, unknown>).total_tokens = 'lots';
    const error = await store.save(bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateValidationError);
    expect((error as StateValidationError).code).toBe('E_INVALID_STATE');
    expect((error as StateValidationError).paths).toEqual(['events[3].status', 'sessions[0].total_tokens']);
    expect((error as Error).message).toContain('events[3].status: Invalid option');
    expect(readFileSync(store.metricsPath)).toEqual(before);
    expect(tempFilesIn(dir)).toEqual([]);
  });

  it('rejects a profile that is not one under an agent named constructor, __proto__ or prototype, writing nothing', async () => {
    const { store } = storeIn(tempDir());
    await store.save(makeState(1, 0));
    const before = readFileSync(store.metricsPath);
    for (const name of ['constructor', '__proto__', 'prototype']) {
      await expect(
        store.update((state) => {
          Object.defineProperty(state.agents, name, {
            value: null,
            enumerable: true,
            configurable: true,
            writable: true,
          });
        }),
      ).rejects.toMatchObject({ code: 'E_INVALID_STATE', issues: [{ path: `agents.${name}` }] });
    }
    await store.close();
    expect(readFileSync(store.metricsPath)).toEqual(before);
    // A valid profile there is kept like any other.
    const { store: again } = storeIn(store.dir);
    const name: string = 'constructor';
    await again.update((state) => {
      state.agents[name] = makeProfile({ agent_name: name, total_invocations: 2 });
    });
    expect(Object.hasOwn((await again.load()).agents, name)).toBe(true);
    expect((await again.load()).agents[name]?.total_invocations).toBe(2);
  });

  it('removes a profile a mutator set to undefined, as a whole file written from that state would lack it', async () => {
    const { store } = storeIn(tempDir());
    await store.save(makeState(1, 0));
    const returned = await store.update((state) => {
      (state.agents as Record<string, unknown>).coding = undefined;
    });
    expect(Object.keys(returned.agents)).toEqual([]);
    expect(Object.keys((await store.load()).agents)).toEqual([]);
    await store.close();
    expect(Object.keys((await storeIn(store.dir).store.load()).agents)).toEqual([]);
  });

  it('rejects an update whose mutator breaks the state, writing nothing', async () => {
    const { store } = storeIn(tempDir());
    await store.save(makeState(1, 0));
    await expect(
      store.update((state) => {
        (state as Record<string, unknown>).total_tokens = -5;
      }),
    ).rejects.toMatchObject({ code: 'E_INVALID_STATE', issues: [{ path: 'total_tokens' }] });
    expect((await store.load()).total_tokens).toBe(0);
  });

  it("rejects a bad value in an existing profile (written field by field) naming its path; the profile's other values are kept", async () => {
    const { store } = storeIn(tempDir());
    await store.save(makeState(1, 0));
    await store.update((state) => {
      (state.agents.coding as { total_tokens: number }).total_tokens = 7;
    });
    await expect(
      store.update((state) => {
        const coding = state.agents.coding as Record<string, unknown>;
        coding.total_tokens = 8; // valid, unchanged from here on
        coding.success_rate = 1.5;
        delete coding.level;
      }),
    ).rejects.toMatchObject({
      code: 'E_INVALID_STATE',
      paths: ['agents.coding.success_rate', 'agents.coding.level'],
    });
    const coding = (await store.load()).agents.coding;
    expect(coding).toMatchObject({ total_tokens: 7, level: 1 });
  });

  it('a key set to undefined is removed, as JSON drops it (root and profile alike)', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir);
    await store.save(makeState(1, 0));
    await store.update((state) => {
      state.notes = 'x';
      (state.agents.coding as Record<string, unknown>).notes = 'y';
    });
    const answered = await store.update((state) => {
      state.notes = undefined;
      (state.agents.coding as Record<string, unknown>).notes = undefined;
    });
    for (const state of [answered, await storeIn(dir).store.load()]) {
      expect(state).not.toHaveProperty('notes');
      expect(state.agents.coding).not.toHaveProperty('notes');
    }
  });

  it('rejects extra keys JSON cannot hold with a coded error', async () => {
    const { store } = storeIn(tempDir());
    const state = makeState(1, 0) as DashboardState;
    state.extra = 10n;
    await expect(store.save(state)).rejects.toMatchObject({ code: 'E_INVALID_STATE' });
    expect(existsSync(store.metricsPath)).toBe(false);
  });
});

describe('FIFO eviction on save', () => {
  it('keeps only the newest maxEvents events', async () => {
    const { store } = storeIn(tempDir(), { maxEvents: 3 });
    const saved = await store.save(makeState(8, 0));
    expect(saved.events.map((e) => e.event_id)).toEqual(['evt-5', 'evt-6', 'evt-7']);
    expect((await store.load()).events).toHaveLength(3);
  });

  it('keeps only the newest maxSessions sessions', async () => {
    const { store } = storeIn(tempDir(), { maxSessions: 2 });
    await store.save(makeState(0, 5));
    expect((await store.load()).sessions.map((s) => s.session_number)).toEqual([4, 5]);
  });

  it('evicts across updates without lowering lifetime counters', async () => {
    const { store } = storeIn(tempDir(), { maxEvents: 5 });
    for (let i = 0; i < 12; i++) {
      await store.update((state) => {
        state.events.push(makeEvent({ event_id: `e${i}` }));
        state.total_tokens += 1200;
      });
    }
    const state = await store.load();
    expect(state.events.map((e) => e.event_id)).toEqual(['e7', 'e8', 'e9', 'e10', 'e11']);
    expect(state.total_tokens).toBe(12 * 1200);
  });
});

describe('getStats', () => {
  it('reports no files and zero counts for a new project', async () => {
    const { store } = storeIn(tempDir());
    expect(await store.getStats()).toEqual({
      metricsFileExists: false,
      backupFileExists: false,
      journalFileExists: false,
      metricsFileSizeBytes: 0,
      backupFileSizeBytes: 0,
      journalFileSizeBytes: 0,
      eventCount: 0,
      sessionCount: 0,
      agentCount: 0,
      metricsFileValid: false,
    });
  });

  it('reports sizes and counts of a project with data', async () => {
    const { store } = storeIn(tempDir());
    await store.save(makeState(4, 2));
    await store.save(makeState(6, 3));
    const stats = await store.getStats();
    expect(stats).toMatchObject({
      metricsFileExists: true,
      backupFileExists: true,
      eventCount: 6,
      sessionCount: 3,
      agentCount: 1,
      metricsFileValid: true,
    });
    expect(stats.metricsFileSizeBytes).toBe(readFileSync(store.metricsPath).length);
    expect(stats.backupFileSizeBytes).toBe(readFileSync(store.backupPath).length);
  });

  it('reads a valid main file once, not twice at the same time (two parsed copies of a large file)', async () => {
    const dir = tempDir();
    await storeIn(dir).store.save(makeState(4, 2));
    const faulty = new FaultyFileSystem();
    const store = new MetricsStore({ projectName: 'p', dir, fileSystem: faulty.fs });
    expect(await store.getStats()).toMatchObject({ eventCount: 4, metricsFileValid: true });
    const reads = faulty.calls.filter(
      (call) => (call.method === 'open' || call.method === 'readFile') && call.args[0] === store.metricsPath,
    );
    expect(reads).toHaveLength(1);
  });

  it('judges the main file alone when the journal needs a repair that a lock-free read cannot make', async () => {
    const dir = tempDir();
    await storeIn(dir).store.save(makeState(4, 2));
    const { store } = storeIn(dir);
    writeFileSync(store.journalPath, 'not a journal\n');
    expect(await store.getStats()).toMatchObject({ journalFileExists: true, metricsFileValid: true });
    writeFileSync(store.metricsPath, '{"truncated');
    expect(await store.getStats()).toMatchObject({ metricsFileValid: false });
  });

  it('never throws on a corrupt or unreadable main file', async () => {
    const { store } = storeIn(tempDir());
    await store.save(makeState(4, 2));
    writeFileSync(store.metricsPath, '{"truncated');
    expect(await store.getStats()).toMatchObject({
      metricsFileExists: true,
      eventCount: 0,
      metricsFileValid: false,
    });
    const faulty = new FaultyFileSystem();
    faulty.arm({ failAt: 1, code: 'EIO', persistent: true });
    const broken = new MetricsStore({ projectName: 'p', dir: store.dir, fileSystem: faulty.fs });
    expect(await broken.getStats()).toMatchObject({
      metricsFileExists: false,
      metricsFileValid: false,
      readError: expect.stringMatching(/^stat failed for .*: EIO: injected fault/),
    });
  });

  it('reads again, as a load does, when another writer checkpoints while it reads', async () => {
    const dir = tempDir();
    const writer = new MetricsStore({ projectName: 'p', dir, checkpointIdleMs: 0 });
    await writer.update((state) => {
      state.events.push(makeEvent({ event_id: 'e0' }));
    });
    await writer.update((state) => {
      state.events.push(makeEvent({ event_id: 'e1' })); // a journal line
    });
    let statsOfJournal = 0;
    const checkpointMidRead: FileSystem = {
      ...nodeFileSystem,
      async stat(path) {
        // The reader's second look at the journal: another writer has checkpointed meanwhile.
        if (path.endsWith('.agent_metrics.journal') && ++statsOfJournal === 2) {
          await writer.update((state) => {
            state.events.push(makeEvent({ event_id: 'e2' }));
          });
          await writer.checkpoint();
        }
        return nodeFileSystem.stat(path);
      },
    };
    const reader = new MetricsStore({ projectName: 'p', dir, fileSystem: checkpointMidRead });
    const stats = await reader.getStats();
    expect(statsOfJournal).toBeGreaterThan(2);
    expect(stats).toMatchObject({ eventCount: 3, metricsFileValid: true });
    expect(stats).not.toHaveProperty('readError');
    await writer.close();
  });

  it('counts what the main file holds when the journal needs a repair a lock-free read cannot make', async () => {
    const dir = tempDir();
    await storeIn(dir).store.save(makeState(4, 2));
    const { store } = storeIn(dir);
    writeFileSync(store.journalPath, 'not a journal\n');
    expect(await store.getStats()).toMatchObject({
      eventCount: 4,
      sessionCount: 2,
      agentCount: 1,
      metricsFileValid: true,
      countsOfMainFileAlone: true,
    });
  });

  it('names a journal it cannot read, and does not call its counts the main file alone', async () => {
    const dir = tempDir();
    await storeIn(dir).store.save(makeState(4, 2));
    const { store } = storeIn(dir);
    rmSync(store.journalPath, { force: true });
    mkdirSync(store.journalPath);
    const stats = await store.getStats();
    expect(stats.readError).toMatch(/EISDIR/);
    expect(stats).not.toHaveProperty('countsOfMainFileAlone');
  });

  it('names a main file it cannot read, instead of calling it invalid and empty', async () => {
    const { store } = storeIn(tempDir());
    await store.save(makeState(4, 2));
    expect(await store.getStats()).not.toHaveProperty('readError');
    const denied = new FaultyFileSystem();
    denied.arm({ failAt: 1, code: 'EACCES', persistent: true, methods: ['open', 'readFile'] });
    const unreadable = new MetricsStore({ projectName: 'p', dir: store.dir, fileSystem: denied.fs });
    expect(await unreadable.getStats()).toMatchObject({
      metricsFileExists: true,
      readError: `read failed for ${store.metricsPath}: EACCES: injected fault in open`,
    });
  });
});

describe('options', () => {
  it('rejects bad options with E_INVALID_OPTIONS naming each one', () => {
    const make = (options: object) => () => new MetricsStore(options as never);
    expect(make({ projectName: '' })).toThrow(/projectName/);
    expect(make({ projectName: 'p', maxEvents: 0 })).toThrow(/maxEvents/);
    expect(make({ projectName: 'p', durability: 'sometimes' })).toThrow(/durability/);
    expect(make({ projectName: 'p', lockTimeoutMs: -1, fileMode: 0o77777 })).toThrow(
      /lockTimeoutMs.*fileMode/,
    );
    expect(make({ projectName: 'p', maxSessions: 1.5 })).toThrow(MetricsError);
    // Longer than a Node.js timer can wait: it would fire at once.
    expect(make({ projectName: 'p', lockTimeoutMs: 2 ** 31 })).toThrow(/lockTimeoutMs/);
    expect(make({ projectName: 'p', lockTimeoutMs: 2 ** 31 - 1 })).not.toThrow();
    expect(make({ projectName: 'p', maxSessions: 1.5 })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTIONS' }),
    );
  });

  it('defaults dir to the current folder and does not modify the options object', () => {
    const options = Object.freeze({ projectName: 'p' });
    const store = new MetricsStore(options);
    expect(store.dir).toBe(process.cwd());
    expect(store.projectName).toBe('p');
    expect(options).toEqual({ projectName: 'p' });
  });
});

describe('complex scenarios', () => {
  it('full workflow: create, update, checkpoint, corrupt, recover, continue', async () => {
    const dir = tempDir();
    const { store, reports } = storeIn(dir, { checkpointIdleMs: 0 });
    expect((await store.load()).events).toEqual([]);
    for (let i = 0; i < 5; i++) {
      await store.update((state) => {
        state.events.push(makeEvent({ event_id: `e${i}` }));
        state.total_sessions += 1;
      });
    }
    // The first write made the JSON file; the next four are in the journal until a checkpoint.
    expect(readJson(store.metricsPath).total_sessions).toBe(1);
    expect((await storeIn(dir).store.load()).total_sessions).toBe(5);
    await store.checkpoint();
    expect(readJson(store.metricsPath).total_sessions).toBe(5);
    expect(readJson(store.backupPath).total_sessions).toBe(1);

    writeFileSync(store.metricsPath, readFileSync(store.metricsPath).subarray(0, 100)); // torn main
    const recovered = await store.load();
    // The .bak is the previous checkpoint; what the corrupt file had folded since then comes back
    // from the journal it folded (kept as .journal.bak): nothing is lost.
    expect(recovered.total_sessions).toBe(5);
    expect(recovered.events.map((event) => event.event_id)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    expect(reports.map((r) => r.action)).toEqual(['restored-from-backup', 'journal-replayed-from-backup']);
    expect(corruptFilesIn(dir)).toHaveLength(1); // the corrupt main, kept as evidence
    await store.update((state) => {
      state.total_sessions += 1;
    });
    expect((await storeIn(dir).store.load()).total_sessions).toBe(6);
  });

  it('multi-agent stats: counts agents, events and sessions from the saved state', async () => {
    const { store } = storeIn(tempDir());
    const state = makeState(0, 2);
    for (const agent of ['coding', 'github', 'linear']) {
      state.events.push(makeEvent({ event_id: `${agent}-1`, agent_name: agent }));
      state.agents[agent] = {
        ...(state.agents.coding as DashboardState['agents'][string]),
        agent_name: agent,
      };
    }
    await store.save(state);
    expect(await store.getStats()).toMatchObject({ agentCount: 3, eventCount: 3, sessionCount: 2 });
  });
});
