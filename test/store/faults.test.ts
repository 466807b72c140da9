import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MetricsError } from '../../src/errors.js';
import { makeState } from '../helpers/builders.js';
import { FaultyFileSystem, type FsMethod } from '../helpers/faulty-fs.js';
import { corruptFilesIn, storeIn, tempFilesIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A project with a valid main (2 events) and .bak (1 event), and a store over a faulty file system. */
async function faultyProject() {
  const dir = tempDir();
  const faulty = new FaultyFileSystem();
  const { store, reports } = storeIn(dir, { fileSystem: faulty.fs });
  await store.save(makeState(1, 0));
  await store.save(makeState(2, 0));
  const mainBefore = readFileSync(store.metricsPath);
  return { dir, faulty, store, reports, mainBefore };
}

describe('error handling: injected file-system faults', () => {
  const cases: Array<{ method: FsMethod; nth?: number; operation: string }> = [
    { method: 'write', nth: 2, operation: 'write' }, // 1st write is the lock's pid
    { method: 'fsync', operation: 'fsync' },
    { method: 'rename', nth: 2, operation: 'rename' }, // 1st rename is the backup, 2nd the snapshot
    { method: 'open', nth: 2, operation: 'create temp file' },
    { method: 'fchmod', operation: 'chmod' },
    { method: 'close', nth: 1, operation: 'close' },
  ];
  for (const { method, nth = 1, operation } of cases) {
    it(`a failed ${method} rejects with E_IO naming '${operation}', leaves main intact and no temp file`, async () => {
      const { dir, faulty, store, mainBefore } = await faultyProject();
      faulty.arm({ failAt: nth, code: 'EIO', methods: [method] });
      const error = await store.save(makeState(5, 0)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MetricsError);
      expect(error).toMatchObject({ code: 'E_IO', operation, cause: { code: 'EIO' } });
      expect(faulty.injected).toBe(1);
      expect(readFileSync(store.metricsPath)).toEqual(mainBefore);
      expect(tempFilesIn(dir)).toEqual([]);
    });
  }

  it('a failed fsync is reported and never retried', async () => {
    const { faulty, store } = await faultyProject();
    faulty.arm({ failAt: 1, code: 'EIO', methods: ['fsync'] });
    await expect(store.save(makeState(5, 0))).rejects.toMatchObject({ code: 'E_IO', operation: 'fsync' });
    expect(faulty.methodsCalled().filter((m) => m === 'fsync')).toHaveLength(1);
    const afterFsync = faulty.methodsCalled().slice(faulty.methodsCalled().indexOf('fsync'));
    expect(afterFsync).not.toContain('rename'); // the new file never replaced the main file
  });

  it('a failed folder fsync rejects the write, though the new file is already in place', async () => {
    const { faulty, store } = await faultyProject();
    // fsyncs: the snapshot's temp file, the new journal's, then the folder.
    faulty.arm({ failAt: 3, code: 'EIO', methods: ['fsync'] });
    await expect(store.save(makeState(5, 0))).rejects.toMatchObject({
      code: 'E_IO',
      operation: 'fsync folder',
    });
    expect((await store.load()).events).toHaveLength(5);
  });

  it('a failed backup (link) fails the save before the main file is touched', async () => {
    const { dir, faulty, store, mainBefore } = await faultyProject();
    faulty.arm({ failAt: 1, code: 'EIO', methods: ['link'] });
    await expect(store.save(makeState(5, 0))).rejects.toMatchObject({ code: 'E_IO', operation: 'backup' });
    expect(readFileSync(store.metricsPath)).toEqual(mainBefore);
    expect(tempFilesIn(dir)).toEqual([]);
  });

  it('copies the backup instead where the file system cannot hard-link', async () => {
    const { faulty, store, mainBefore } = await faultyProject();
    faulty.arm({ failAt: 1, code: 'EPERM', persistent: true, methods: ['link'] });
    await store.save(makeState(5, 0));
    expect(readFileSync(store.backupPath)).toEqual(mainBefore);
    expect((await store.load()).events).toHaveLength(5);
  });

  it('a failed rename of the backup removes its temp link', async () => {
    const { dir, faulty, store, mainBefore } = await faultyProject();
    faulty.arm({ failAt: 1, code: 'ENOSPC', methods: ['rename'] });
    await expect(store.save(makeState(5, 0))).rejects.toMatchObject({ code: 'E_IO', operation: 'backup' });
    expect(readFileSync(store.metricsPath)).toEqual(mainBefore);
    expect(tempFilesIn(dir)).toEqual([]);
  });

  it('an unreadable backup during recovery is E_IO, and the corrupt main stays in place for a retry', async () => {
    const { dir, faulty, store } = await faultyProject();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(store.metricsPath, 'corrupt');
    // Reads: main (no lock), main again (under the lock), then the backup.
    faulty.arm({ failAt: 3, code: 'EACCES', methods: ['readFile'] });
    await expect(store.load()).rejects.toMatchObject({ code: 'E_IO', operation: 'read' });
    // Moved aside only once the backup is read: the retry reports why (not "main file missing").
    expect(corruptFilesIn(dir)).toHaveLength(0);
    faulty.arm(undefined);
    expect((await store.load()).events).toHaveLength(1); // the .bak generation
    expect(corruptFilesIn(dir)).toHaveLength(1);
  });

  it('a failed folder creation is E_IO', async () => {
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(`${tempDir()}/sub`, { fileSystem: faulty.fs });
    faulty.arm({ failAt: 1, code: 'EACCES', methods: ['mkdir'] });
    await expect(store.save(makeState(1, 0))).rejects.toMatchObject({
      code: 'E_IO',
      operation: 'create folder',
    });
  });

  it('for every N, failing the Nth call of an update rejects with a code or succeeds, never half-applies', async () => {
    for (const persistent of [false, true]) {
      for (let n = 1; ; n++) {
        const { dir, faulty, store } = await faultyProject();
        faulty.arm({ failAt: n, code: 'ENOSPC', persistent });
        const result = await store
          .update((state) => {
            state.total_sessions += 1;
          })
          .then(
            () => 'ok' as const,
            (error: unknown) => error,
          );
        faulty.arm(undefined);
        const after = await store.load();
        if (result === 'ok') {
          expect(after.total_sessions).toBe(1);
          if (faulty.injected === 0) break;
          continue;
        }
        expect(result).toBeInstanceOf(MetricsError);
        expect([0, 1]).toContain(after.total_sessions); // old or new generation, always whole
        expect(after.events).toHaveLength(2);
        // A leftover temp file (when the cleanup itself was failed) is swept by the next write.
        await store.update(() => undefined);
        expect({ n, persistent, temps: tempFilesIn(dir) }).toEqual({ n, persistent, temps: [] });
        if (n > 40) throw new Error('the update never succeeded');
      }
    }
  });
});
