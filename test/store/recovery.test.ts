import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/model/types.js';
import type { FileSystem } from '../../src/store/file-system.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { quarantine } from '../../src/store/recovery.js';
import { makeState } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { corruptFilesIn, readJson, storeIn, tempFilesIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const FIXTURES = new URL('../fixtures/python-written/', import.meta.url);

/** A project whose main file holds `events` events and whose .bak holds `events - 1`. */
async function projectWithTwoGenerations(events = 3) {
  const dir = tempDir();
  const { store, reports } = storeIn(dir);
  await store.save(makeState(events - 1, 0));
  await store.save(makeState(events, 0));
  return { dir, store, reports };
}

/**
 * A load through `fileSystem` fails with E_IO and leaves the corrupt main file (`{"torn`) where it
 * is, no copy and no report; a later load with the real file system restores the backup (2 events)
 * and says why (not "main file missing").
 */
async function expectRecoveryLeftForLater(dir: string, mainPath: string, fileSystem: FileSystem) {
  const blocked = storeIn(dir, { fileSystem });
  await expect(blocked.store.load()).rejects.toMatchObject({ code: 'E_IO' });
  expect(corruptFilesIn(dir)).toEqual([]);
  expect(readFileSync(mainPath, 'utf8')).toBe('{"torn');
  expect(tempFilesIn(dir)).toEqual([]);
  expect(blocked.reports).toEqual([]);
  const again = storeIn(dir);
  expect((await again.store.load()).events).toHaveLength(2);
  expect(again.reports).toEqual([
    expect.objectContaining({
      action: 'restored-from-backup',
      reason: expect.stringMatching(/^not valid JSON/),
    }),
  ]);
}

describe('corruption recovery', () => {
  it('moves an unparseable main file aside, keeps its bytes, and restores the backup', async () => {
    const { dir, store, reports } = await projectWithTwoGenerations();
    writeFileSync(store.metricsPath, '{"version": 1, "proj');
    const state = await store.load();
    expect(state.events).toHaveLength(2);
    const [corrupt] = corruptFilesIn(dir);
    expect(corrupt).toMatch(/^\.agent_metrics\.json\.corrupt-\d{8}T\d{6}\.\d{3}Z$/);
    expect(readFileSync(join(dir, corrupt as string), 'utf8')).toBe('{"version": 1, "proj');
    expect(reports).toEqual([
      {
        action: 'restored-from-backup',
        reason: expect.stringMatching(/^not valid JSON/),
        quarantinedPath: join(dir, corrupt as string),
      },
    ]);
  });

  it('leaves a corrupt main file where it is while the backup cannot be read (E_IO), and reports it once it can', async () => {
    const { dir, store } = await projectWithTwoGenerations();
    writeFileSync(store.metricsPath, '{"torn');
    const denied = new FaultyFileSystem();
    // Every read of the backup fails; the rest works.
    const backupUnreadable = {
      ...denied.fs,
      open: async (path: string, mode: never, permissions?: number) => {
        if (path === store.backupPath) throw Object.assign(new Error('EACCES: injected'), { code: 'EACCES' });
        return denied.fs.open(path, mode, permissions);
      },
      readFile: async (path: string) => {
        if (path === store.backupPath) throw Object.assign(new Error('EACCES: injected'), { code: 'EACCES' });
        return denied.fs.readFile(path);
      },
    };
    await expectRecoveryLeftForLater(dir, store.metricsPath, backupUnreadable);
  });

  it.each([
    { when: 'the copy of the backup cannot be written (ENOSPC)', method: 'write', code: 'ENOSPC' },
    { when: 'it cannot be moved aside (EIO): no copy of the backup either', method: 'rename', code: 'EIO' },
  ] as const)('leaves a corrupt main file where it is when $when', async ({ method, code }) => {
    const { dir, store } = await projectWithTwoGenerations();
    writeFileSync(store.metricsPath, '{"torn');
    const faulty = new FaultyFileSystem();
    faulty.arm({ failAt: 1, code, persistent: true, methods: [method] });
    await expectRecoveryLeftForLater(dir, store.metricsPath, faulty.fs);
  });

  it('writes the backup back as the main file, byte for byte', async () => {
    const { store } = await projectWithTwoGenerations();
    const backupBytes = readFileSync(store.backupPath);
    writeFileSync(store.metricsPath, 'garbage');
    await store.load();
    expect(readFileSync(store.metricsPath)).toEqual(backupBytes);
    // A second load needs no recovery any more.
    const again = storeIn(store.dir);
    await again.store.load();
    expect(again.reports).toEqual([]);
  });

  it('treats a main file with missing fields as corrupt and says which field', async () => {
    const { store, reports } = await projectWithTwoGenerations();
    const main = readJson(store.metricsPath);
    delete main.total_tokens;
    writeFileSync(store.metricsPath, JSON.stringify(main));
    expect((await store.load()).events).toHaveLength(2);
    expect(reports[0]?.reason).toContain('total_tokens: required number is missing');
  });

  it('treats wrong types deep inside as corrupt and names the path', async () => {
    const { store, reports } = await projectWithTwoGenerations();
    const main = readJson(store.metricsPath) as { events: Array<Record<string, unknown>> };
    (main.events[1] as Record<string, unknown>).input_tokens = 'many';
    writeFileSync(store.metricsPath, JSON.stringify(main));
    await store.load();
    expect(reports[0]?.reason).toContain('events[1].input_tokens');
  });

  it('recovers from an empty, NUL-filled or non-UTF-8 main file', async () => {
    for (const bytes of [Buffer.alloc(0), Buffer.alloc(4096), Buffer.from([0x7b, 0xff, 0xfe, 0x7d])]) {
      const { store, reports } = await projectWithTwoGenerations();
      writeFileSync(store.metricsPath, bytes);
      expect((await store.load()).events).toHaveLength(2);
      expect(reports[0]?.action).toBe('restored-from-backup');
    }
  });

  it('starts fresh when both files are corrupt, keeping both aside and saying why', async () => {
    const { dir, store, reports } = await projectWithTwoGenerations();
    writeFileSync(store.metricsPath, '[');
    writeFileSync(store.backupPath, '{}');
    const state = await store.load();
    expect(state.events).toEqual([]);
    expect(state.project_name).toBe('test-project');
    expect(corruptFilesIn(dir)).toHaveLength(2);
    expect(reports[0]).toMatchObject({
      action: 'started-fresh',
      reason: expect.stringMatching(/^not valid JSON/),
      backupReason: expect.stringContaining('version: required number is missing'),
    });
    expect(readFileSync(reports[0]?.quarantinedBackupPath as string, 'utf8')).toBe('{}');
  });

  it('starts fresh, saying so, when the main file is corrupt and there is no backup', async () => {
    const dir = tempDir();
    const { store, reports } = storeIn(dir);
    writeFileSync(store.metricsPath, 'nope');
    expect((await store.load()).events).toEqual([]);
    expect(reports).toEqual([
      expect.objectContaining({ action: 'started-fresh', backupReason: 'backup file missing' }),
    ]);
    expect(corruptFilesIn(dir)).toHaveLength(1);
  });

  it('restores from the backup when the main file is missing', async () => {
    const { store, reports } = await projectWithTwoGenerations();
    const { rmSync } = await import('node:fs');
    rmSync(store.metricsPath);
    expect((await store.load()).events).toHaveLength(2);
    expect(reports).toEqual([{ action: 'restored-from-backup', reason: 'main file missing' }]);
  });

  it('returns a fresh state and writes nothing when there are no files', async () => {
    const dir = tempDir();
    const { store, reports } = storeIn(dir);
    const state = await store.load();
    expect(state.total_sessions).toBe(0);
    expect(existsSync(store.metricsPath)).toBe(false);
    expect(existsSync(store.lockPath)).toBe(false);
    expect(reports).toEqual([]);
  });

  it('never lets a corrupt main file fail a later save, and keeps the good backup', async () => {
    const { dir, store, reports } = await projectWithTwoGenerations();
    const goodBackup = readFileSync(store.backupPath);
    writeFileSync(store.metricsPath, '{broken');
    await store.save(makeState(7, 0));
    expect((readJson(store.metricsPath).events as unknown[]).length).toBe(7);
    expect(readFileSync(store.backupPath)).toEqual(goodBackup);
    expect(reports).toEqual([expect.objectContaining({ action: 'quarantined-before-save' })]);
    expect(corruptFilesIn(dir)).toHaveLength(1);
  });

  it('an update on a corrupt main file recovers from the backup first and applies to it', async () => {
    const { store } = await projectWithTwoGenerations();
    writeFileSync(store.metricsPath, '');
    const saved = await store.update((state) => {
      state.total_sessions = 41;
    });
    expect(saved.events).toHaveLength(2);
    expect(readJson(store.metricsPath).total_sessions).toBe(41);
  });

  it('does not treat an unreadable main file as corrupt: E_IO, and nothing is moved', async () => {
    const { dir, store } = await projectWithTwoGenerations();
    // Opening it, or reading one of its pieces.
    for (const [method, code] of [
      ['open', 'EACCES'],
      ['read', 'EIO'],
    ] as const) {
      const faulty = new FaultyFileSystem();
      faulty.arm({ failAt: 1, code, methods: [method] });
      const blind = new MetricsStore({ projectName: 'p', dir, fileSystem: faulty.fs });
      await expect(blind.load()).rejects.toMatchObject({ code: 'E_IO', operation: 'read' });
      expect(faulty.injected).toBe(1);
      expect(corruptFilesIn(dir)).toEqual([]);
    }
    expect(await store.load()).toMatchObject({ events: expect.any(Array) });
  });

  it('does not fail the load when the onRecover callback throws', async () => {
    const { dir, store } = await projectWithTwoGenerations();
    writeFileSync(store.metricsPath, 'x');
    const throwing = new MetricsStore({
      projectName: 'p',
      dir,
      onRecover: () => {
        throw new Error('callback bug');
      },
    });
    expect((await throwing.load()).events).toHaveLength(2);
  });

  it('gives two quarantined files of the same millisecond different names', async () => {
    const dir = tempDir();
    const { nodeFileSystem } = await import('../../src/store/file-system.js');
    const now = new Date('2026-05-05T05:05:05.005Z');
    writeFileSync(join(dir, 'a'), '1');
    writeFileSync(join(dir, 'b'), '2');
    const first = await quarantine(nodeFileSystem, join(dir, 'a'), now);
    copyFileSync(join(dir, 'b'), join(dir, 'a'));
    const second = await quarantine(nodeFileSystem, join(dir, 'a'), now);
    expect(first).toBe(join(dir, 'a.corrupt-20260505T050505.005Z'));
    expect(second).toBe(`${first}-2`);
    expect(readFileSync(second, 'utf8')).toBe('2');
  });
});

describe('files written by the Python implementation', () => {
  it('load without recovery and round-trip every key, extra keys included', async () => {
    const dir = tempDir();
    for (const name of ['.agent_metrics.json', '.agent_metrics.json.bak']) {
      copyFileSync(new URL(name, FIXTURES), join(dir, name));
    }
    const original = readJson(join(dir, '.agent_metrics.json'));
    const { store, reports } = storeIn(dir);
    const state = await store.load();
    expect(reports).toEqual([]);
    expect(state).toEqual(original);

    await store.update((s) => {
      s.python_dashboard_theme = 'dark'; // an extra root key
      // Stored events are frozen history: changing one means replacing it.
      s.events[0] = { ...(s.events[0] as AgentEvent), extra_event_key: [1, 2] };
    });
    await store.checkpoint();
    const { agent_metrics_journal: binding, ...written } = readJson(store.metricsPath);
    expect(binding).toMatchObject({ id: expect.any(String) });
    const { updated_at: _a, python_dashboard_theme, ...rest } = written;
    const { updated_at: _b, ...originalRest } = original;
    expect(python_dashboard_theme).toBe('dark');
    const { extra_event_key, ...firstEvent } = (rest.events as Array<Record<string, unknown>>)[0] as Record<
      string,
      unknown
    >;
    expect(extra_event_key).toEqual([1, 2]);
    expect({ ...rest, events: [firstEvent, ...(rest.events as unknown[]).slice(1)] }).toEqual(originalRest);
    expect(Object.keys(written).slice(0, 11)).toEqual(Object.keys(original));
    // The file we wrote becomes the next .bak and loads again without recovery.
    expect((await storeIn(dir).store.load()).python_dashboard_theme).toBe('dark');
  });
});

describe('reading the state file', () => {
  it('reads a large state file in pieces of at most 1 MiB and parses them as they come, never whole', async () => {
    const dir = tempDir();
    const saved = makeState(3000, 0);
    saved.events = saved.events.map((event) => ({ ...event, error_message: 'é'.repeat(400) }));
    await storeIn(dir, { maxEvents: 3000 }).store.save(saved);
    expect(readFileSync(join(dir, '.agent_metrics.json')).length).toBeGreaterThan(2 << 20);
    const faulty = new FaultyFileSystem();
    const { store, reports } = storeIn(dir, { fileSystem: faulty.fs, maxEvents: 3000 });
    const state = await store.load();
    expect(reports).toEqual([]);
    expect(state.events).toEqual(saved.events);
    const onMain = faulty.calls.filter((call) => call.args[0] === store.metricsPath);
    expect(onMain.map((call) => call.method)).not.toContain('readFile');
    const pieces = faulty.calls
      .filter((call) => call.method === 'read')
      .map((call) => call.args[2] as number);
    expect(pieces.length).toBeGreaterThan(2);
    expect(Math.max(...pieces)).toBeLessThanOrEqual(1 << 20);
  });

  it('reads a file the pieces cannot parse whole, and judges it as before (a byte-order mark is fine)', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir);
    await store.save(makeState(3, 0));
    await store.checkpoint();
    const bytes = readFileSync(store.metricsPath);
    writeFileSync(store.metricsPath, Buffer.concat([Buffer.from('\uFEFF'), bytes]));
    const faulty = new FaultyFileSystem();
    const again = storeIn(dir, { fileSystem: faulty.fs });
    expect((await again.store.load()).events).toHaveLength(3);
    expect(again.reports).toEqual([]);
    expect(faulty.methodsCalled()).toContain('readFile');
  });
});
