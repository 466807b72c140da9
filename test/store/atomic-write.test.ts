import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commitFile, prepareFile, sweepTempFiles } from '../../src/store/atomic-write.js';
import { type FileSystem, nodeFileSystem } from '../../src/store/file-system.js';
import { makeEvent, makeState } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { readJson, storeIn, tempFilesIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('atomic writes', () => {
  it('creates the main file, and the folder when it does not exist yet', async () => {
    const dir = join(tempDir(), 'nested', 'project');
    const { store } = storeIn(dir);
    await store.save(makeState(2, 1));
    expect(readJson(store.metricsPath).events).toHaveLength(2);
    expect(store.metricsPath).toBe(join(dir, '.agent_metrics.json'));
    expect(store.backupPath).toBe(join(dir, '.agent_metrics.json.bak'));
    expect(store.lockPath).toBe(join(dir, '.agent_metrics.lock'));
  });

  it('writes exactly what load returns, with updated_at set to the time of the save', async () => {
    const { store } = storeIn(tempDir());
    const state = makeState(3, 2);
    const before = Date.now();
    const saved = await store.save(state);
    const loaded = await store.load();
    expect(loaded).toEqual(saved);
    expect({ ...loaded, updated_at: state.updated_at }).toEqual(state);
    expect(Date.parse(loaded.updated_at)).toBeGreaterThanOrEqual(before - 1);
    expect(loaded.updated_at).toMatch(/Z$/);
    expect(state.updated_at).toBe('2026-01-01T09:00:00.000Z'); // the caller's object is not modified
  });

  it('keeps the previous generation as .bak, by linking it rather than re-reading it', async () => {
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(tempDir(), { fileSystem: faulty.fs });
    await store.save(makeState(1, 0));
    const firstInode = statSync(store.metricsPath).ino;
    faulty.arm(undefined);
    await store.save(makeState(2, 0));
    expect(readJson(store.backupPath).events).toHaveLength(1);
    expect(readJson(store.metricsPath).events).toHaveLength(2);
    expect(statSync(store.backupPath).ino).toBe(firstInode);
    expect(faulty.methodsCalled()).not.toContain('readFile');
  });

  it('leaves no temp files behind after many saves', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir);
    for (let i = 0; i < 10; i++) await store.save(makeState(i, 0));
    expect(tempFilesIn(dir)).toEqual([]);
  });

  it('handles a large state (5,000 events, multi-megabyte file) intact', async () => {
    const { store } = storeIn(tempDir(), { maxEvents: 5000 });
    const state = makeState(5000, 0);
    state.events[4999] = makeEvent({ event_id: 'last', error_message: 'x'.repeat(100_000), status: 'error' });
    await store.save(state);
    const loaded = await store.load();
    expect(loaded.events).toHaveLength(5000);
    expect(loaded.events[4999]?.error_message).toHaveLength(100_000);
    expect(statSync(store.metricsPath).size).toBeGreaterThan(2_000_000);
  });

  it('fsyncs the temp file before the rename and the folder after it', async () => {
    const faulty = new FaultyFileSystem();
    // No lease: the second save takes the lock as every write of another process would.
    const { store } = storeIn(tempDir(), { fileSystem: faulty.fs, lockLeaseMs: 0 });
    await store.save(makeState(1, 0));
    faulty.arm(undefined);
    await store.save(makeState(2, 0));
    const steps = faulty.calls
      .filter((call) => ['open', 'fsync', 'rename', 'write'].includes(call.method))
      .map((call) => (call.method === 'open' ? `open:${call.args[1]}` : call.method));
    // A checkpoint: the pid (the lock file is still open from the first save); snapshot temp written
    // and fsynced; new journal temp written and fsynced; backup link renamed; snapshot renamed,
    // folder fsynced; journal renamed, folder fsynced.
    expect(steps).toEqual([
      'write',
      'open:create-exclusive',
      'write',
      'fsync',
      'open:create-exclusive',
      'write',
      'write',
      'fsync',
      'rename',
      'rename',
      'open:read',
      'fsync',
      'rename',
      'open:read',
      'fsync',
    ]);
    const tempOpen = faulty.calls.find((call) => call.args[1] === 'create-exclusive');
    const rename = faulty.calls.filter((call) => call.method === 'rename').at(1);
    expect(rename?.args).toEqual([tempOpen?.args[0], store.metricsPath]);
  });

  it("with durability 'none' makes no fsync call at all", async () => {
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(tempDir(), { fileSystem: faulty.fs, durability: 'none' });
    await store.save(makeState(1, 0));
    await store.update((state) => {
      state.total_sessions += 1;
    });
    expect(faulty.methodsCalled()).not.toContain('fsync');
    expect((await store.load()).total_sessions).toBe(1);
  });

  it('creates files readable by their owner only, or with the configured mode', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir);
    await store.save(makeState(1, 0));
    await store.save(makeState(1, 0));
    for (const path of [store.metricsPath, store.backupPath, store.journalPath, store.lockPath]) {
      expect(statSync(path).mode & 0o777).toBe(0o600);
    }
    const shared = storeIn(tempDir(), { fileMode: 0o640 }).store;
    await shared.save(makeState(1, 0));
    expect(statSync(shared.metricsPath).mode & 0o777).toBe(0o640);
  });

  it('sweeps temp files left by crashed writers on the next write', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid; // exited and reaped
    writeFileSync(join(dir, `.agent_metrics.json.tmp-${dead}-deadbeef`), '{"half":');
    writeFileSync(join(dir, `.agent_metrics.json.bak.tmp-${dead}-deadbeef`), '');
    writeFileSync(join(dir, `.agent_metrics.journal.tmp-${process.pid}-0ld0ne`), ''); // ours, not in progress
    // A live process's temp file may be a checkpoint being written before it takes the lock.
    const live = `.agent_metrics.json.tmp-${process.ppid}-11ve`;
    writeFileSync(join(dir, live), '');
    writeFileSync(join(dir, 'unrelated.tmp-1'), 'keep me');
    await store.save(makeState(1, 0));
    expect(tempFilesIn(dir)).toEqual([live, 'unrelated.tmp-1'].sort());
    expect(readFileSync(join(dir, 'unrelated.tmp-1'), 'utf8')).toBe('keep me');
  });
});

describe('reading', () => {
  it('reads files of every size up to and past the first buffer, byte for byte', async () => {
    const { nodeFileSystem } = await import('../../src/store/file-system.js');
    const dir = tempDir();
    for (const size of [0, 1, 4095, 4096, 4097, 100_000]) {
      const bytes = Buffer.alloc(size, 7);
      writeFileSync(join(dir, `f${size}`), bytes);
      const { data, stat } = await nodeFileSystem.readFile(join(dir, `f${size}`));
      expect(data.equals(bytes)).toBe(true);
      expect(stat.size).toBe(size);
    }
  });

  it('a sweep keeps a temp file this process is writing, however the folder is spelled (the root folder is "/")', async () => {
    const dir = tempDir();
    const target = join(dir, 'state.json');
    let resume: () => void = () => undefined;
    const paused = new Promise<void>((resolve) => {
      resume = resolve;
    });
    const writing: FileSystem = {
      ...nodeFileSystem,
      write: async (fd, data, position) => {
        await paused; // the temp file exists now, and is in progress
        return nodeFileSystem.write(fd, data, position);
      },
    };
    const prepared = prepareFile(writing, target, Buffer.from('{}'), { durability: 'none', fileMode: 0o600 });
    while (readdirSync(dir).length === 0) await new Promise((resolve) => setImmediate(resolve));
    // A folder spelled with a trailing slash, as the root folder is: `${dir}/${name}` had a double
    // slash, so the temp file in progress was not recognised, and was swept from under its writer.
    await sweepTempFiles(nodeFileSystem, `${dir}/`, [target]);
    expect(readdirSync(dir)).toHaveLength(1);
    // Other spellings of the folder: relative, with `..`.
    await sweepTempFiles(nodeFileSystem, relative(process.cwd(), dir), [target]);
    await sweepTempFiles(nodeFileSystem, `${dir}/../${basename(dir)}`, [target]);
    expect(readdirSync(dir)).toHaveLength(1);
    resume();
    await commitFile(nodeFileSystem, await prepared, { durability: 'none', fileMode: 0o600 });
    expect(readFileSync(target, 'utf8')).toBe('{}');
  });
});
