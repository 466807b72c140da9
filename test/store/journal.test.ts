import {
  cpSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StorageIOError } from '../../src/errors.js';
import { createProfile } from '../../src/model/record-event.js';
import type { StatePatch } from '../../src/model/state-patch.js';
import type { DashboardState } from '../../src/model/types.js';
import { type FileSystem, nodeFileSystem } from '../../src/store/file-system.js';
import { JOURNAL_BINDING_KEY } from '../../src/store/journal-binding.js';
import {
  encodeHeader,
  encodeLine,
  JOURNAL_FORMAT,
  JOURNAL_RESERVE_BYTES,
  LINE_STARTS_TRIED,
  parseEntries,
  parseHeader,
} from '../../src/store/journal-format.js';
import type { MetricsStoreOptions } from '../../src/store/options.js';
import { bump, makeEvent } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { corruptFilesIn, file, journalLines, readJson, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const JOURNAL = '.agent_metrics.journal';
const MAIN = '.agent_metrics.json';

/** The real file system, but .agent_metrics.journal.bak cannot be opened (EACCES). */
const journalBackupUnreadable: FileSystem = {
  ...nodeFileSystem,
  open: async (path, mode, permissions) => {
    if (path.endsWith(`${JOURNAL}.bak`)) {
      throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES' });
    }
    return nodeFileSystem.open(path, mode, permissions);
  },
};

/** Update number `n`: one event `<prefix>n` and one more session. */
function ids(state: { events: Array<{ event_id: string }> }): string[] {
  return state.events.map((event) => event.event_id);
}

function expectUpdates(state: DashboardState, count: number, prefix = 'e'): void {
  expect(state.total_sessions).toBe(count);
  expect(ids(state)).toEqual(Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`));
}

/** A project with `count` updates; the first is a bootstrap checkpoint, the others journal lines. */
async function project(count: number, options: Partial<MetricsStoreOptions> = {}, prefix = 'e') {
  const dir = tempDir();
  const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, ...options });
  for (let n = 1; n <= count; n++) await store.update(bump(n, prefix));
  return { dir, store, reports };
}

/** The header a checkpoint writes for the snapshot bound by `binding`. */
function headerFor(binding: { id: string; folded_id?: string; folded_offset?: number }): Buffer {
  const follows =
    binding.folded_id === undefined
      ? undefined
      : { id: binding.folded_id, offset: binding.folded_offset ?? 0 };
  return encodeHeader(binding.id, follows);
}

const fdatasyncs = (faulty: FaultyFileSystem) =>
  faulty.calls.filter((call) => call.method === 'fdatasync').length;

describe('journal: torn tail', () => {
  it('ignores a torn last line when reading and cuts it off exactly at the next write', async () => {
    const { dir: template } = await project(3);
    const journalPath = file(template, JOURNAL);
    const original = journalLines(journalPath);

    // A real 4th line: the same 4th update made on a copy of the folder.
    const sibling = tempDir();
    cpSync(template, sibling, { recursive: true });
    await storeIn(sibling, { projectName: 'p', checkpointIdleMs: 0 }).store.update(bump(4));
    const line = journalLines(file(sibling, JOURNAL)).subarray(original.length);
    expect(line.indexOf(0x0a)).toBe(line.length - 1);

    const cuts = [1, 8, 9, Math.floor(line.length / 2), line.length - 2, line.length - 1];
    for (const cut of cuts) {
      const dir = tempDir();
      cpSync(template, dir, { recursive: true });
      const path = file(dir, JOURNAL);
      writeFileSync(path, Buffer.concat([original, line.subarray(0, cut)]));

      const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
      expectUpdates(await store.load(), 3);
      // A lock-free read repairs nothing: the torn bytes may be a write in progress.
      expect(statSync(path).size).toBe(original.length + cut);
      expect(reports).toEqual([]);

      expectUpdates(await store.update(bump(4)), 4);
      const after = journalLines(path);
      expect(after.subarray(0, original.length).equals(original)).toBe(true);
      const appended = after.subarray(original.length);
      expect(appended.indexOf(0x0a)).toBe(appended.length - 1);
      const header = parseHeader(after);
      if (!('id' in header)) throw new Error(header.reason);
      const parsed = parseEntries(after, header.end);
      expect(parsed).toMatchObject({ tornBytes: 0, damaged: [], validEnd: after.length });
      expect(parsed.entries).toHaveLength(3); // updates 2, 3 and 4 (the 1st made the snapshot)
      expect(reports.map((report) => report.action)).toEqual(['journal-tail-truncated']);
      expect(reports[0]?.reason).toContain(`${cut} bytes`);

      expectUpdates(await storeIn(dir, { projectName: 'p' }).store.load(), 4);
    }
  });
});

/**
 * After a write that had to checkpoint first: the JSON file holds the state before that write
 * (`before`), bound to a new journal that holds that write's line alone.
 */
function expectFoldedBefore(dir: string, before: string[]): void {
  const main = readJson(file(dir, MAIN)) as unknown as DashboardState;
  expect(ids(main)).toEqual(before);
  const journal = readFileSync(file(dir, JOURNAL));
  const header = parseHeader(journal);
  if (!('id' in header)) throw new Error(header.reason);
  expect(header.id).toBe((main[JOURNAL_BINDING_KEY] as { id: string }).id);
  expect(parseEntries(journal, header.end)).toMatchObject({ tornBytes: 0, damaged: [] });
  expect(parseEntries(journal, header.end).entries).toHaveLength(1);
}

/** Damages the newline of the last-but-one change line: the last line is then found inside it, at the end. */
function damageLastButOneNewline(path: string): Buffer {
  const data = readFileSync(path);
  const lines = journalLines(path);
  const last = lines.lastIndexOf(0x0a, lines.length - 2);
  data[last] = 0x78;
  writeFileSync(path, data);
  return data;
}

/**
 * The real file system, but hard links fail (EPERM) and so does writing a file whose path holds
 * `pathPart` (ENOSPC), until `makeRoom()`. By default no copy of a file can be made aside.
 */
function noLinksAndFull(pathPart = '.corrupt-'): {
  fs: FileSystem;
  copiesTried: () => number;
  makeRoom: () => void;
} {
  const copies = new Set<number>();
  let tried = 0;
  let full = true;
  const fs: FileSystem = {
    ...nodeFileSystem,
    link: async () => {
      throw Object.assign(new Error('EPERM: no links here'), { code: 'EPERM' });
    },
    open: async (path, mode, permissions) => {
      const fd = await nodeFileSystem.open(path, mode, permissions);
      if (path.includes(pathPart)) {
        copies.add(fd);
        tried++;
      }
      return fd;
    },
    close: async (fd) => {
      copies.delete(fd);
      return nodeFileSystem.close(fd);
    },
    write: async (fd, data, position) => {
      if (full && copies.has(fd)) throw Object.assign(new Error('ENOSPC: disk full'), { code: 'ENOSPC' });
      return nodeFileSystem.write(fd, data, position);
    },
  };
  return {
    fs,
    copiesTried: () => tried,
    makeRoom: () => {
      full = false;
    },
  };
}

describe('journal: a torn end that holds complete lines', () => {
  it('keeps a copy of the journal and folds it into a checkpoint instead of cutting it', async () => {
    const { dir } = await project(4); // snapshot: update 1; journal lines: updates 2, 3, 4
    const path = file(dir, JOURNAL);
    const damaged = damageLastButOneNewline(path);

    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    expect(ids(await store.load())).toEqual(['e1', 'e2']);
    expect(reports).toEqual([]); // a lock-free read repairs nothing
    expect(readFileSync(path).equals(damaged)).toBe(true);

    expect(ids(await store.update(bump(5)))).toEqual(['e1', 'e2', 'e5']);
    expect(reports.map((report) => report.action)).toEqual(['journal-tail-truncated']);
    expect(reports[0]?.reason).toContain('1 complete line(s) among them');
    const aside = corruptFilesIn(dir);
    expect(aside).toHaveLength(1);
    expect(reports[0]?.quarantinedPath).toBe(file(dir, aside[0] as string));
    expect(readFileSync(file(dir, aside[0] as string)).equals(damaged)).toBe(true);
    expectFoldedBefore(dir, ['e1', 'e2']);
    expect(ids(await storeIn(dir, { projectName: 'p' }).store.load())).toEqual(['e1', 'e2', 'e5']);
  });

  it('keeps one copy however many writes a failing checkpoint takes', async () => {
    const faulty = new FaultyFileSystem();
    const { dir } = await project(4);
    damageLastButOneNewline(file(dir, JOURNAL));
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    faulty.arm({ failAt: 1, code: 'ENOSPC', persistent: true, methods: ['write'] });
    await expect(store.update(bump(5))).rejects.toMatchObject({ code: 'E_IO' });
    await expect(store.update(bump(5))).rejects.toMatchObject({ code: 'E_IO' });
    faulty.arm(undefined);
    expect(ids(await store.update(bump(5)))).toEqual(['e1', 'e2', 'e5']);
    expect(corruptFilesIn(dir)).toHaveLength(1);
    expect(reports.map((report) => report.action)).toEqual(['journal-tail-truncated']);
  });

  it('keeps a copy when the folder cannot be listed (no copy already aside can be found then)', async () => {
    const faulty = new FaultyFileSystem();
    const { dir } = await project(4);
    const damaged = damageLastButOneNewline(file(dir, JOURNAL));
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    faulty.arm({ failAt: 1, code: 'EACCES', persistent: true, methods: ['readdir'] });
    expect(ids(await store.update(bump(5)))).toEqual(['e1', 'e2', 'e5']);
    expect(faulty.injected).toBeGreaterThan(0);
    const copy = reports[0]?.quarantinedPath as string;
    expect(corruptFilesIn(dir)).toEqual([basename(copy)]);
    expect(readFileSync(copy).equals(damaged)).toBe(true);
  });

  it('copies the journal where it cannot be hard-linked, and fsyncs the copy', async () => {
    const faulty = new FaultyFileSystem();
    const { dir } = await project(4);
    const damaged = damageLastButOneNewline(file(dir, JOURNAL));
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    faulty.arm({ failAt: 1, code: 'EPERM', persistent: true, methods: ['link'] });
    await store.update(bump(5));
    const copy = reports[0]?.quarantinedPath as string;
    expect(readFileSync(copy).equals(damaged)).toBe(true);
    const opened = faulty.calls.findIndex((call) => call.method === 'open' && call.args[0] === copy);
    expect(faulty.methodsCalled().slice(opened + 1, opened + 4)).toEqual(['write', 'fsync', 'close']);
  });

  it('nlink > 1: never cuts a journal that has another name (a copy another process kept); the checkpoint replaces it', async () => {
    const { dir } = await project(4);
    const path = file(dir, JOURNAL);
    const data = Buffer.concat([journalLines(path), Buffer.from('0badc0de {"caps":{"max_ev')]); // a plain torn tail
    writeFileSync(path, data);
    const other = file(dir, `${JOURNAL}.corrupt-20260101T000000.000Z`);
    linkSync(path, other);

    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    expectUpdates(await store.update(bump(5)), 5);
    expect(readFileSync(other).equals(data)).toBe(true);
    expect(reports.map((report) => report.action)).toEqual(['journal-tail-truncated']);
    expect(reports[0]?.reason).toContain('an interrupted write, were not taken');
    expectFoldedBefore(dir, ['e1', 'e2', 'e3', 'e4']);
  });

  it('nlink > 1: never writes into a journal that has another name; the checkpoint replaces it', async () => {
    const { dir } = await project(4);
    const path = file(dir, JOURNAL);
    const data = readFileSync(path);
    const other = file(dir, `${JOURNAL}.corrupt-20260101T000000.000Z`);
    linkSync(path, other);
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    expectUpdates(await store.update(bump(5)), 5);
    expect(readFileSync(other).equals(data)).toBe(true);
    expect(reports).toEqual([]);
    expectUpdates(await storeIn(dir, { projectName: 'p' }).store.load(), 5);
  });

  it('makes a new copy when the .corrupt- names present are an unrelated file or a symbolic link to the journal', async () => {
    const { dir } = await project(4);
    const path = file(dir, JOURNAL);
    const earlier = file(dir, `${JOURNAL}.corrupt-20200101T000000.000Z`);
    writeFileSync(earlier, 'an earlier journal');
    symlinkSync(path, file(dir, `${JOURNAL}.corrupt-20200101T000000.001Z`));
    const damaged = damageLastButOneNewline(path);
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    await store.update(bump(5));
    const copy = reports[0]?.quarantinedPath as string;
    expect(corruptFilesIn(dir)).toHaveLength(3);
    expect(lstatSync(copy).isFile()).toBe(true);
    expect(readFileSync(copy).equals(damaged)).toBe(true);
    expect(readFileSync(earlier, 'utf8')).toBe('an earlier journal');
  });

  it('copies the bytes of a journal reached through a symbolic link (a hard link would only be another symbolic link)', async () => {
    const { dir } = await project(4);
    const path = file(dir, JOURNAL);
    const elsewhere = file(tempDir(), 'journal');
    renameSync(path, elsewhere);
    symlinkSync(elsewhere, path);
    const damaged = damageLastButOneNewline(path);
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    await store.update(bump(5));
    const copy = reports[0]?.quarantinedPath as string;
    expect(lstatSync(copy).isFile()).toBe(true);
    expect(readFileSync(copy).equals(damaged)).toBe(true);
  });

  it('goes on without a copy when none can be made, and leaves no partial one', async () => {
    const dir = (await project(4)).dir;
    damageLastButOneNewline(file(dir, JOURNAL));
    const noRoom = noLinksAndFull();
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: noRoom.fs });
    expect(ids(await store.update(bump(5)))).toEqual(['e1', 'e2', 'e5']);
    expect(noRoom.copiesTried()).toBe(1);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ action: 'journal-tail-truncated' });
    expect(reports[0]?.quarantinedPath).toBeUndefined();
    expect(reports[0]?.reason).toMatch(/; no copy of the journal could be kept: .*ENOSPC: disk full$/);
    expect(corruptFilesIn(dir)).toEqual([]);
    expect(ids(await storeIn(dir, { projectName: 'p' }).store.load())).toEqual(['e1', 'e2', 'e5']);
  });

  it('retries the copy at the next write when the write whose copy failed could not checkpoint either', async () => {
    const { dir } = await project(4);
    const damaged = damageLastButOneNewline(file(dir, JOURNAL));
    const noRoom = noLinksAndFull();
    const faulty = new FaultyFileSystem(noRoom.fs);
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    faulty.arm({ failAt: 1, code: 'ENOSPC', persistent: true, methods: ['write'] });
    await expect(store.update(bump(5))).rejects.toMatchObject({ code: 'E_IO' });
    faulty.arm(undefined);
    noRoom.makeRoom();
    expect(ids(await store.update(bump(5)))).toEqual(['e1', 'e2', 'e5']);
    expect(reports.map((report) => report.quarantinedPath)).toEqual([undefined, expect.any(String)]);
    expect(readFileSync(reports[1]?.quarantinedPath as string).equals(damaged)).toBe(true);
  });

  it('keeps one byte copy per store where links fail, however many writes fail', async () => {
    const { dir } = await project(4);
    const path = file(dir, JOURNAL);
    const data = readFileSync(path);
    data[data.indexOf('"e3"') + 1] = 0x78; // a damaged middle line
    writeFileSync(path, data);
    const noTemp = noLinksAndFull('.tmp-'); // no room for a checkpoint's new files
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: noTemp.fs });
    await expect(store.update(bump(5))).rejects.toMatchObject({ code: 'E_IO' });
    await expect(store.update(bump(5))).rejects.toMatchObject({ code: 'E_IO' });
    noTemp.makeRoom();
    expect(ids(await store.update(bump(5)))).toEqual(['e1', 'e2', 'e4', 'e5']);
    expect(corruptFilesIn(dir)).toHaveLength(1);
    expect(new Set(reports.map((report) => report.quarantinedPath)).size).toBe(1);
  });

  it("does not cut the journal when a read after a failed checkpoint sees only the lost pages' NUL bytes (the copy is the same file)", async () => {
    const { dir } = await project(4); // snapshot: update 1; journal lines: updates 2, 3, 4
    const path = file(dir, JOURNAL);
    const lines = journalLines(path);
    const secondEnd = lines.indexOf(0x0a, lines.indexOf(0x0a) + 1) + 1;
    const thirdEnd = lines.indexOf(0x0a, secondEnd) + 1;
    // A power cut: update 3's line lost its later pages (NUL bytes), update 4's page was kept.
    const data = Buffer.concat([
      lines.subarray(0, secondEnd + 100),
      Buffer.alloc(20_000),
      lines.subarray(thirdEnd),
      Buffer.alloc(JOURNAL_RESERVE_BYTES),
    ]);
    writeFileSync(path, data);
    const faulty = new FaultyFileSystem();
    // No lease: the next write takes the lock anew, and reads what was appended past its view.
    const options = { projectName: 'p', checkpointIdleMs: 0, lockLeaseMs: 0, fileSystem: faulty.fs };
    const { store, reports } = storeIn(dir, options);
    faulty.arm({ failAt: 1, code: 'ENOSPC', persistent: true, methods: ['write'] });
    await expect(store.checkpoint()).rejects.toMatchObject({ code: 'E_IO' });
    faulty.arm(undefined);
    // It reads a window, which ends in the lost pages' NUL bytes, before the line kept after them.
    expect(ids(await store.update(bump(5)))).toEqual(['e1', 'e2', 'e5']);
    expect(reports.map((report) => report.action)).toEqual(['journal-tail-truncated']);
    expect(readFileSync(reports[0]?.quarantinedPath as string).equals(data)).toBe(true);
  });

  it('a read that sees only NUL bytes of a torn end does not keep a later full read from copying its line', async () => {
    const faulty = new FaultyFileSystem();
    const options = { projectName: 'p', checkpointIdleMs: 0, lockLeaseMs: 0, fileSystem: faulty.fs };
    const { dir, store, reports } = await project(4, options);
    const path = file(dir, JOURNAL);
    const line = encodeLine(JSON.stringify({ caps: { max_events: 500, max_sessions: 50 }, set: { n: 5 } }));
    // Past the store's view: a line whose later page was lost (NUL bytes), then one on a kept page.
    const data = Buffer.concat([journalLines(path), line.subarray(0, 30), Buffer.alloc(20_000), line]);
    writeFileSync(path, data);
    linkSync(path, file(tempDir(), 'journal-backup')); // another name: no cut, a checkpoint
    faulty.arm({ failAt: 1, code: 'ENOSPC', persistent: true, methods: ['write'] });
    // Its first read is a window that ends in the NUL bytes: no complete line seen.
    await expect(store.update(bump(5))).rejects.toMatchObject({ code: 'E_IO' });
    faulty.arm(undefined);
    expect(ids(await store.update(bump(5)))).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
    const kept = reports.filter((report) => report.quarantinedPath !== undefined);
    expect(kept).toHaveLength(1);
    expect(readFileSync(kept[0]?.quarantinedPath as string).equals(data)).toBe(true);
  });

  it('processes that each find the torn end while the checkpoint fails share one hard-link copy', async () => {
    const { dir } = await project(4);
    damageLastButOneNewline(file(dir, JOURNAL));
    const kept: Array<string | undefined> = [];
    for (let process = 0; process < 3; process++) {
      const faulty = new FaultyFileSystem();
      const { store, reports } = storeIn(dir, {
        projectName: 'p',
        checkpointIdleMs: 0,
        fileSystem: faulty.fs,
      });
      faulty.arm({ failAt: 1, code: 'ENOSPC', persistent: true, methods: ['write'] });
      await expect(store.update(bump(5))).rejects.toMatchObject({ code: 'E_IO' });
      kept.push(...reports.map((report) => report.quarantinedPath));
    }
    expect(corruptFilesIn(dir)).toHaveLength(1);
    expect(kept).toEqual(Array(3).fill(file(dir, corruptFilesIn(dir)[0] as string)));
  });

  it('damaged lines and a torn end that holds a line: both reports name one copy', async () => {
    const { dir } = await project(6); // journal lines: updates 2 to 6
    const path = file(dir, JOURNAL);
    damageLastButOneNewline(path); // updates 5 and 6: the torn end
    const data = readFileSync(path);
    data[data.indexOf('"e3"') + 1] = 0x78; // update 3's line: damaged, update 4's follows
    writeFileSync(path, data);
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    expect(ids(await store.update(bump(7)))).toEqual(['e1', 'e2', 'e4', 'e7']);
    expect(reports.map((report) => report.action)).toEqual(['journal-repaired', 'journal-tail-truncated']);
    expect(corruptFilesIn(dir)).toHaveLength(1);
    const copy = file(dir, corruptFilesIn(dir)[0] as string);
    expect(reports.map((report) => report.quarantinedPath)).toEqual([copy, copy]);
    expect(readFileSync(copy).equals(data)).toBe(true);
  });

  it('the copy kept for a damaged line holds the torn tail after it too (no cut before the copy)', async () => {
    const { dir } = await project(4);
    const path = file(dir, JOURNAL);
    const lines = journalLines(path);
    lines[lines.indexOf('"e3"') + 1] = 0x78; // a damaged middle line
    const data = Buffer.concat([lines, Buffer.from('0badc0de {"caps":{"max_ev')]); // and a plain torn tail
    writeFileSync(path, data);
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    expect(ids(await store.update(bump(5)))).toEqual(['e1', 'e2', 'e4', 'e5']);
    expect(reports.map((report) => report.action)).toEqual(['journal-repaired', 'journal-tail-truncated']);
    expect(readFileSync(reports[0]?.quarantinedPath as string).equals(data)).toBe(true);
  });

  it('a damaged line whose copy cannot be made does not block writes', async () => {
    const { dir } = await project(4);
    const path = file(dir, JOURNAL);
    const data = readFileSync(path);
    data[data.indexOf('"e3"') + 1] = 0x78;
    writeFileSync(path, data);
    const noRoom = noLinksAndFull();
    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: noRoom.fs });
    expect(ids(await store.update(bump(5)))).toEqual(['e1', 'e2', 'e4', 'e5']);
    expect(reports.map((report) => report.action)).toEqual(['journal-repaired']);
    expect(reports[0]?.quarantinedPath).toBeUndefined();
    expect(reports[0]?.reason).toMatch(/; no copy of the journal could be kept: .*ENOSPC: disk full$/);
  });

  it('sets aside a journal that does not continue the JSON file when its torn end holds a line', async () => {
    const { dir, store: first } = await project(2);
    await first.close();
    const line = encodeLine(JSON.stringify({ caps: { max_events: 500, max_sessions: 50 }, set: { n: 1 } }));
    const foreign = Buffer.concat([encodeHeader('foreign'), Buffer.from('torn'), line]);
    writeFileSync(file(dir, JOURNAL), foreign);

    const { store, reports } = storeIn(dir, { projectName: 'p' });
    expectUpdates(await store.load(), 2);
    expect(reports.map((report) => report.action)).toEqual(['journal-set-aside']);
    expect(readFileSync(reports[0]?.quarantinedPath as string).equals(foreign)).toBe(true);
  });
});

describe('journal: damage', () => {
  it('skips a damaged middle line, keeps a copy and folds the rest into a checkpoint', async () => {
    const { dir } = await project(4); // snapshot: update 1; journal lines: updates 2, 3, 4
    const path = file(dir, JOURNAL);
    const data = journalLines(path);
    const starts = [0];
    for (let at = data.indexOf(0x0a); at >= 0 && at < data.length - 1; at = data.indexOf(0x0a, at + 1)) {
      starts.push(at + 1);
    }
    expect(starts).toHaveLength(4); // header + 3 changes
    const second = starts[2] as number;
    const middle = second + Math.floor(((starts[3] as number) - second) / 2);
    data[middle] = (data[middle] as number) ^ 0x01;
    writeFileSync(path, data);

    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    const loaded = await store.load();
    // Values are absolute: the line after the damaged one still sets the counter right.
    expect(ids(loaded)).toEqual(['e1', 'e2', 'e4']);
    expect(loaded.total_sessions).toBe(4);

    await store.update(bump(5));
    const repaired = reports.find((report) => report.action === 'journal-repaired');
    expect(repaired?.reason).toContain(`byte ${second}`);
    expect(repaired?.quarantinedPath).toBeDefined();
    expect(readFileSync(repaired?.quarantinedPath as string).equals(data)).toBe(true);

    expectFoldedBefore(dir, ['e1', 'e2', 'e4']);
    expect((readJson(file(dir, MAIN)) as unknown as DashboardState).total_sessions).toBe(4);
    const reloaded = await storeIn(dir, { projectName: 'p' }).store.load();
    expect(ids(reloaded)).toEqual(['e1', 'e2', 'e4', 'e5']);
    expect(reloaded.total_sessions).toBe(5);
  });

  it("sets aside a journal that does not continue the JSON file, keeping the file's state", async () => {
    const { dir, store: first } = await project(2);
    await first.close();
    const { dir: other } = await project(3, {}, 'x');
    const foreign = readFileSync(file(other, JOURNAL));
    writeFileSync(file(dir, JOURNAL), foreign);

    const { store, reports } = storeIn(dir, { projectName: 'p' });
    expectUpdates(await store.load(), 2);
    expect(reports.map((report) => report.action)).toEqual(['journal-set-aside']);
    const aside = corruptFilesIn(dir);
    expect(aside).toEqual([expect.stringMatching(/^\.agent_metrics\.journal\.corrupt-/)]);
    expect(reports[0]?.quarantinedPath).toBe(file(dir, aside[0] as string));
    expect(readFileSync(file(dir, aside[0] as string)).equals(foreign)).toBe(true);
    expect(existsSync(file(dir, JOURNAL))).toBe(false);

    expectUpdates(await store.update(bump(3)), 3);
  });
});

describe('journal: a complete line inside a damaged one', () => {
  const header = encodeHeader('j');
  const change = (n: number) =>
    encodeLine(JSON.stringify({ caps: { max_events: 500, max_sessions: 50 }, set: { n } }));
  const numbers = (data: Buffer) =>
    parseEntries(data, header.length).entries.map(
      (entry) => (entry.change as unknown as { set: { n: number } }).set.n,
    );
  /** Looks like a line's start (8 hex digits, a space, `{`), but no checksum matches after it. */
  const lookAlike = '0badc0de {"caps":';
  /** Bytes before the first place `lineWithin` checks: the damaged line's first, then a checksum's width. */
  const CHECKSUM_WIDTH = 9;

  it('keeps the line after a damaged newline', () => {
    const first = Buffer.from(change(1));
    first[first.length - 1] = 0x78; // "x"
    const data = Buffer.concat([header, first, change(2), change(3)]);
    expect(numbers(data)).toEqual([2, 3]);
    const parsed = parseEntries(data, header.length);
    expect(parsed).toMatchObject({
      validEnd: data.length,
      tornBytes: 0,
      damaged: [{ offset: header.length, reason: 'checksum mismatch' }],
    });
    expect(parsed.entries.map((entry) => entry.end)).toEqual([
      header.length + first.length + change(2).length,
      data.length,
    ]);
  });

  it('keeps a complete line written right after a torn one when a good line follows it', () => {
    const torn = change(2).subarray(0, 25);
    const middle = Buffer.concat([header, change(1), torn, change(3), change(4)]);
    expect(numbers(middle)).toEqual([1, 3, 4]);
    expect(parseEntries(middle, header.length)).toMatchObject({
      validEnd: middle.length,
      damaged: [{ offset: header.length + change(1).length, reason: 'checksum mismatch' }],
    });
    // At the end, the torn bytes and the line after them are the torn end (neither acknowledged).
    const last = Buffer.concat([header, change(1), torn, change(3)]);
    expect(numbers(last)).toEqual([1]);
    expect(parseEntries(last, header.length)).toMatchObject({
      validEnd: header.length + change(1).length,
      tornBytes: torn.length + change(3).length,
      tornLines: 1,
      damaged: [],
    });
    // A write cut short leaves a prefix of its lines: no complete line in the torn end.
    const cut = Buffer.concat([header, change(1), torn, Buffer.alloc(9)]);
    expect(parseEntries(cut, header.length)).toMatchObject({ tornBytes: torn.length, tornLines: 0 });
  });

  it('counts the damaged lines at the end as complete lines of the torn end', () => {
    const damaged = Buffer.from(change(2));
    damaged[12] = 0x78;
    const data = Buffer.concat([header, change(1), damaged, Buffer.from('x\n'), change(3).subarray(0, 5)]);
    expect(parseEntries(data, header.length)).toMatchObject({
      validEnd: header.length + change(1).length,
      tornBytes: damaged.length + 2 + 5,
      tornLines: 2,
      damaged: [],
    });
  });

  it('keeps a found line when a wholly damaged line comes between it and the next good one', () => {
    const torn = change(2).subarray(0, 25);
    const data = Buffer.concat([header, change(1), torn, change(3), Buffer.from('damaged\n'), change(4)]);
    expect(numbers(data)).toEqual([1, 3, 4]);
  });

  it('takes only a start whose checksum matches and whose line is a change', () => {
    const garbage = Buffer.from(`torn${lookAlike}{}}`, 'latin1');
    expect(numbers(Buffer.concat([header, change(1), garbage, change(2), change(3)]))).toEqual([1, 2, 3]);
    // A look-alike alone, or a checksummed line that is not a change: nothing to keep.
    expect(numbers(Buffer.concat([header, change(1), garbage, Buffer.from('\n'), change(3)]))).toEqual([
      1, 3,
    ]);
    // A change's JSON after a look-alike checksum: not a line (its checksum does not match).
    const unchecked = Buffer.from(
      `xx0badc0de ${JSON.stringify({ caps: { max_events: 500, max_sessions: 50 }, set: { n: 42 } })}\n`,
    );
    expect(numbers(Buffer.concat([header, change(1), unchecked, change(3)]))).toEqual([1, 3]);
    const notAChange = encodeLine('{"n":2}');
    expect(numbers(Buffer.concat([header, change(1), Buffer.from('xx'), notAChange, change(3)]))).toEqual([
      1, 3,
    ]);
  });

  it(`checks at most ${LINE_STARTS_TRIED} places (a space and \`{\`) inside one damaged line`, () => {
    const spaced = (count: number) =>
      Buffer.from(`${'x'.repeat(CHECKSUM_WIDTH)}${' {'.repeat(count - 1)}${lookAlike}`, 'latin1');
    const within = Buffer.concat([header, spaced(LINE_STARTS_TRIED - 1), change(1), change(2)]);
    expect(numbers(within)).toEqual([1, 2]);
    const beyond = Buffer.concat([header, spaced(LINE_STARTS_TRIED), change(1), change(2)]);
    expect(numbers(beyond)).toEqual([2]);
  });

  it('finds every line that damaged bytes run into when a good line follows, from any view (property)', () => {
    const noNewline = fc
      .uint8Array({ minLength: 1, maxLength: 60 })
      .map((bytes) => Buffer.from(bytes.map((byte) => (byte === 0x0a ? 0x00 : byte))));
    // Before a line: bytes that run into it (it is then found), or a damaged line of their own.
    const merged = fc.oneof(
      noNewline,
      noNewline.map((bytes) => Buffer.concat([bytes, Buffer.from(lookAlike, 'latin1')])),
      fc.integer({ min: 1, max: 30 }).map((length) => change(99).subarray(0, length)),
    );
    const before = fc.oneof(
      fc.constant(undefined),
      merged.map((bytes) => ({ bytes, merged: true })),
      noNewline.map((bytes) => ({ bytes: Buffer.concat([bytes, Buffer.from('\n')]), merged: false })),
    );
    const tail = fc.record({
      torn: fc.integer({ min: 0, max: 30 }),
      reserve: fc.integer({ min: 0, max: 40 }),
    });
    fc.assert(
      fc.property(
        fc.array(before, { minLength: 1, maxLength: 12 }),
        tail,
        fc.nat(),
        (plan, { torn, reserve }, pick) => {
          const parts: Buffer[] = [header];
          const starts: number[] = [];
          const ends: number[] = [];
          let offset = header.length;
          plan.forEach((damage, n) => {
            starts.push(offset);
            if (damage) {
              parts.push(damage.bytes);
              offset += damage.bytes.length;
            }
            parts.push(change(n));
            offset += change(n).length;
            ends.push(offset);
          });
          parts.push(change(77).subarray(0, torn), Buffer.alloc(reserve));
          const data = Buffer.concat(parts);
          // A line read the usual way: no damage before it, or damage with a newline of its own.
          const usual = plan.map((damage) => damage === undefined || !damage.merged);
          const lastUsual = usual.lastIndexOf(true);
          const validEnd = lastUsual < 0 ? header.length : (ends[lastUsual] as number);
          const all = {
            entries: plan.slice(0, lastUsual + 1).map((_, n) => ({ n, end: ends[n] as number })),
            validEnd,
            tornBytes: offset + torn - validEnd,
            // Lines after the last one read the usual way each ran into damaged bytes.
            tornLines: plan.length - 1 - lastUsual,
            damaged: starts.filter((at, n) => plan[n] !== undefined && at < validEnd),
          };
          // A reader parses from its view: the header's end, or the end of a line read the usual way.
          const views = [header.length, ...ends.filter((_, n) => usual[n])];
          const view = views[pick % views.length] as number;
          const expected = {
            ...all,
            entries: all.entries.filter((entry) => entry.end > view),
            damaged: all.damaged.filter((at) => at >= view),
          };
          for (const [slice, base] of [
            [data, 0],
            [data.subarray(view), view],
          ] as const) {
            const parsed = parseEntries(slice, view, base);
            expect({
              entries: parsed.entries.map((entry) => ({
                n: (entry.change as unknown as { set: { n: number } }).set.n,
                end: entry.end,
              })),
              validEnd: parsed.validEnd,
              tornBytes: parsed.tornBytes,
              tornLines: parsed.tornLines,
              damaged: parsed.damaged.map((line) => line.offset),
            }).toEqual(expected);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a store keeps the line after a damaged newline, and folds the rest into a checkpoint', async () => {
    const { dir } = await project(4); // snapshot: update 1; journal lines: updates 2, 3, 4
    const path = file(dir, JOURNAL);
    const data = readFileSync(path);
    const header = data.indexOf(0x0a);
    const secondLineEnd = data.indexOf(0x0a, header + 1);
    data[secondLineEnd] = 0x78;
    writeFileSync(path, data);

    const { store, reports } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    // Update 2's line is lost with its newline; update 3's line, which it ran into, is kept.
    expect(ids(await store.load())).toEqual(['e1', 'e3', 'e4']);
    await store.update(bump(5));
    expect(reports.map((report) => report.action)).toEqual(['journal-repaired']);
    expect(reports[0]?.reason).toContain(`byte ${header + 1}`);
    expectFoldedBefore(dir, ['e1', 'e3', 'e4']);
    expect(ids(await storeIn(dir, { projectName: 'p' }).store.load())).toEqual(['e1', 'e3', 'e4', 'e5']);
  });
});

describe('journal: group commit', () => {
  it('writes concurrent updates with one fdatasync, each mutator seeing the ones before it', async () => {
    const dir = tempDir();
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    await store.update(bump(1)); // bootstrap checkpoint: the journal exists from here on
    faulty.arm(undefined);

    const seen: number[] = [];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.update((state) => {
          seen.push(state.total_sessions);
          bump(i + 2)(state);
        }),
      ),
    );
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(results.map((state) => state.total_sessions)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    expect(fdatasyncs(faulty)).toBeGreaterThanOrEqual(1);
    expect(fdatasyncs(faulty)).toBeLessThanOrEqual(2);
    expectUpdates(await storeIn(dir, { projectName: 'p' }).store.load(), 21);
  });

  it('fails a throwing mutator alone; the rest of its batch is written', async () => {
    const dir = tempDir();
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    await store.update(bump(1));
    faulty.arm(undefined);

    const boom = new Error('mutator failed');
    const [a, b, c] = await Promise.allSettled([
      store.update(bump(2)),
      store.update((state) => {
        state.events.push(makeEvent({ event_id: 'never' }));
        state.total_sessions = 1000;
        throw boom;
      }),
      store.update(bump(3)),
    ]);
    expect(b).toEqual({ status: 'rejected', reason: boom });
    expect(a.status).toBe('fulfilled');
    expect(c.status === 'fulfilled' && c.value.total_sessions).toBe(3);
    // Batched (the first batch holds the failing mutator and another), not one fdatasync each.
    expect(fdatasyncs(faulty)).toBeLessThan(3);
    expectUpdates(await storeIn(dir, { projectName: 'p' }).store.load(), 3);
  });
});

describe('journal: checkpoints', () => {
  it('a lost snapshot is rebuilt from .bak and .journal.bak, and damaged lines of those are said skipped', async () => {
    const { dir, store } = await project(4); // snapshot: update 1; journal lines: updates 2, 3, 4
    await store.checkpoint(); // .bak: update 1; .journal.bak: lines 2, 3, 4
    const kept = file(dir, `${JOURNAL}.bak`);
    const data = readFileSync(kept);
    const third = data.indexOf('"e3"');
    data[third + 1] = 0x78; // e3 → x3: the line's checksum no longer matches
    writeFileSync(kept, data);
    writeFileSync(file(dir, MAIN), '{"torn');

    const fresh = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    const loaded = await fresh.store.load();
    // Values are absolute: the counter is right; only the damaged line's event is missing.
    expect(ids(loaded)).toEqual(['e1', 'e2', 'e4']);
    expect(loaded.total_sessions).toBe(4);
    const replayed = fresh.reports.find((report) => report.action === 'journal-replayed-from-backup');
    expect(replayed?.reason).toContain('1 damaged line(s) of them skipped');
    // The checkpoint that follows replaces .journal.bak: a copy of it is kept, as evidence.
    expect(readFileSync(replayed?.quarantinedBackupPath as string).equals(data)).toBe(true);
    expect(replayed?.quarantinedPath).toBeUndefined(); // the journal itself was sound
  });

  it('a write that had to checkpoint first is replayed from .bak, .journal.bak and the new journal when its snapshot is lost', async () => {
    const { dir, store } = await project(3);
    await store.checkpoint();
    await store.update(bump(4));
    await store.update(bump(5));
    // Another name for the journal (a hard-link backup of the folder): the next write checkpoints.
    // (Another store: this one's lease may skip the journal's stat, see `JournalWatch`.)
    linkSync(file(dir, JOURNAL), file(tempDir(), 'journal-backup'));
    const { store: next } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    await next.update(bump(6));
    expectFoldedBefore(dir, ['e1', 'e2', 'e3', 'e4', 'e5']);
    await next.update(bump(7));
    writeFileSync(file(dir, MAIN), '{"torn'); // the snapshot that write made is lost

    const fresh = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    expectUpdates(await fresh.store.load(), 7);
    expect(fresh.reports.map((report) => report.action)).toEqual([
      'restored-from-backup',
      'journal-replayed-from-backup',
    ]);
  });

  it("folder fsync fails after the snapshot's rename: the write's lines are in place (committed), unless the journal's rename fails too (not committed)", async () => {
    for (const journalRenameFails of [false, true]) {
      const { dir } = await project(3);
      linkSync(file(dir, JOURNAL), file(tempDir(), 'journal-backup')); // the next write checkpoints
      let failFolderFsync = false;
      const fileSystem: FileSystem = {
        ...nodeFileSystem,
        rename: async (from, to) => {
          if (journalRenameFails && to === file(dir, JOURNAL)) {
            throw Object.assign(new Error('EIO: rename'), { code: 'EIO' });
          }
          await nodeFileSystem.rename(from, to);
          if (to === file(dir, MAIN)) failFolderFsync = true;
        },
        fsync: async (fd) => {
          if (!failFolderFsync) return nodeFileSystem.fsync(fd);
          failFolderFsync = false;
          throw Object.assign(new Error('EIO: fsync'), { code: 'EIO' });
        },
      };
      const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem });
      const error = await store.update(bump(4)).then(
        () => undefined,
        (rejected: unknown) => rejected,
      );
      const after = ids(await storeIn(dir, { projectName: 'p' }).store.load());
      if (journalRenameFails) {
        // Not in place, and the error says so: a retry records it once.
        expect(error).toMatchObject({ code: 'E_IO', committed: false });
        expect(after).toEqual(['e1', 'e2', 'e3']);
      } else {
        expect(error).toMatchObject({ code: 'E_IO', operation: 'fsync folder', committed: true });
        expect(after).toEqual(['e1', 'e2', 'e3', 'e4']);
      }
    }
  });

  it('a lost snapshot rebuilt through backups keeps a copy of a journal whose torn end holds a line', async () => {
    const { dir, store } = await project(3);
    await store.checkpoint(); // .bak: update 1; .journal.bak: lines 2, 3
    await store.update(bump(4));
    await store.update(bump(5));
    const damaged = damageLastButOneNewline(file(dir, JOURNAL));
    writeFileSync(file(dir, MAIN), '{"torn');

    const fresh = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    expect(ids(await fresh.store.load())).toEqual(['e1', 'e2', 'e3']);
    const replayed = fresh.reports.find((report) => report.action === 'journal-replayed-from-backup');
    expect(replayed?.reason).toMatch(/\(1 complete line\(s\) in the journal's torn end not taken\)$/);
    expect(readFileSync(replayed?.quarantinedPath as string).equals(damaged)).toBe(true);
    expect(replayed?.quarantinedBackupPath).toBeUndefined();
  });

  it('a rebuild through backups whose checkpoint fails keeps one byte copy where links fail, however many loads', async () => {
    const { dir, store } = await project(3);
    await store.checkpoint();
    await store.update(bump(4));
    await store.update(bump(5));
    const damaged = damageLastButOneNewline(file(dir, JOURNAL));
    writeFileSync(file(dir, MAIN), '{"torn');

    const noJournalRoom = noLinksAndFull(`${JOURNAL}.tmp-`); // the checkpoint's new journal fails
    const fresh = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: noJournalRoom.fs });
    await expect(fresh.store.load()).rejects.toMatchObject({ code: 'E_IO' });
    await expect(fresh.store.load()).rejects.toMatchObject({ code: 'E_IO' });
    noJournalRoom.makeRoom();
    expect(ids(await fresh.store.load())).toEqual(['e1', 'e2', 'e3']);
    const copies = corruptFilesIn(dir).filter((name) => name.startsWith(`${JOURNAL}.corrupt-`));
    expect(copies).toHaveLength(1);
    expect(readFileSync(file(dir, copies[0] as string)).equals(damaged)).toBe(true);
  });

  it('a rebuild through backups says so when no copy of a damaged .journal.bak can be made', async () => {
    const { dir, store } = await project(3);
    await store.checkpoint(); // .journal.bak: lines 2, 3
    await store.update(bump(4));
    const kept = file(dir, `${JOURNAL}.bak`);
    const data = readFileSync(kept);
    data[data.indexOf('"e2"') + 1] = 0x78; // update 2's line: damaged, update 3's follows
    writeFileSync(kept, data);
    writeFileSync(file(dir, MAIN), '{"torn');

    const fresh = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: noLinksAndFull().fs });
    expect(ids(await fresh.store.load())).toEqual(['e1', 'e3', 'e4']);
    const replayed = fresh.reports.find((report) => report.action === 'journal-replayed-from-backup');
    expect(replayed?.reason).toMatch(
      /\(1 damaged line\(s\) of them skipped; no copy of \.agent_metrics\.journal\.bak could be kept: .*ENOSPC: disk full\)$/,
    );
    expect(replayed?.quarantinedBackupPath).toBeUndefined();
    expect(replayed?.quarantinedPath).toBeUndefined();
  });

  it('a load takes no lock for an empty journal that does not continue a main file the Python side saved', async () => {
    const { dir, store } = await project(2);
    await store.close(); // a checkpoint: the journal holds its header alone
    const saved = readJson(file(dir, MAIN)) as Record<string, unknown>;
    delete saved[JOURNAL_BINDING_KEY]; // as the Python side writes it
    saved.total_sessions = 7;
    writeFileSync(file(dir, `${MAIN}.py-tmp`), JSON.stringify(saved, null, 2));
    renameSync(file(dir, `${MAIN}.py-tmp`), file(dir, MAIN));
    const faulty = new FaultyFileSystem();
    const reader = storeIn(dir, { projectName: 'p', fileSystem: faulty.fs });
    for (let round = 0; round < 2; round++) {
      expect((await reader.store.load()).total_sessions).toBe(7);
      expect(await reader.store.getStats()).toMatchObject({ eventCount: 2, metricsFileValid: true });
    }
    const locking = faulty.calls.filter((call) => String(call.args[0]).endsWith('.agent_metrics.lock'));
    expect(locking).toEqual([]);
    expect(reader.reports).toEqual([]);
  });

  it('a first write whose journal rename fails after its snapshot is in place says committed: a retry would count twice', async () => {
    const dir = tempDir();
    let failed = false;
    const journalRenameFailsOnce: FileSystem = {
      ...nodeFileSystem,
      rename: async (from, to) => {
        if (!failed && to.endsWith(`/${JOURNAL}`)) {
          failed = true;
          throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
        }
        return nodeFileSystem.rename(from, to);
      },
    };
    const { store } = storeIn(dir, { projectName: 'p', fileSystem: journalRenameFailsOnce });
    await expect(store.update(bump(1))).rejects.toMatchObject({
      code: 'E_IO',
      committed: true,
      message: expect.stringMatching(
        /: EIO: injected \(the change is written: the new state file is in place and durable\)$/,
      ),
    });
    expect(failed).toBe(true);
    expect((await storeIn(dir, { projectName: 'p' }).store.load()).total_sessions).toBe(1);
    await store.close({ checkpoint: false });

    // A checkpoint of a project with a journal, without fsync: not "durable", and the journal named.
    const again = storeIn(dir, { projectName: 'p', durability: 'none', fileSystem: journalRenameFailsOnce });
    await again.store.update(bump(2)); // a checkpoint first: the first part left no journal
    await again.store.update(bump(3)); // a line in the journal
    failed = false;
    await expect(again.store.checkpoint()).rejects.toMatchObject({
      committed: true,
      message: expect.stringMatching(
        /\(the change is written: the new state file is in place, with the previous journal, which it names\)$/,
      ),
    });
    expect((await storeIn(dir, { projectName: 'p' }).store.load()).total_sessions).toBe(3);
    await again.store.close({ checkpoint: false });
  });

  it('a backup of the journal that cannot be made is E_IO (StorageIOError), not a bare errno error', async () => {
    const { dir, store } = await project(2);
    mkdirSync(file(dir, `${JOURNAL}.bak`));
    writeFileSync(join(file(dir, `${JOURNAL}.bak`), 'x'), 'x');
    const failure = await store.checkpoint().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StorageIOError);
    expect(failure).toMatchObject({
      code: 'E_IO',
      operation: 'backup',
      message: expect.stringContaining('EISDIR'),
    });
  });

  it('a .journal.bak that the main file does not name is not read: unreadable, it fails no load', async () => {
    const { dir, store } = await project(2);
    await store.checkpoint(); // .journal.bak: lines 2
    await store.update(bump(3)); // a line in the journal
    await store.close({ checkpoint: false });
    const saved = readJson(file(dir, MAIN)) as Record<string, unknown>;
    delete saved[JOURNAL_BINDING_KEY]; // the Python side saved it: it names no journal
    writeFileSync(file(dir, MAIN), JSON.stringify(saved, null, 2));
    const reader = storeIn(dir, { projectName: 'p', fileSystem: journalBackupUnreadable });
    expect((await reader.store.load()).total_sessions).toBe(2);
    expect(reader.reports.map((report) => report.action)).toEqual(['journal-set-aside']);
  });

  it('a lost snapshot whose .journal.bak cannot be read is E_IO: the journal is not set aside, nothing is lost', async () => {
    const { dir, store } = await project(3);
    await store.checkpoint(); // .bak: update 1; .journal.bak: lines 2, 3
    await store.update(bump(4));
    await store.close({ checkpoint: false });
    writeFileSync(file(dir, MAIN), '{"torn');
    const denied = storeIn(dir, {
      projectName: 'p',
      checkpointIdleMs: 0,
      fileSystem: journalBackupUnreadable,
    });
    await expect(denied.store.load()).rejects.toMatchObject({
      code: 'E_IO',
      message: expect.stringContaining(`${JOURNAL}.bak: EACCES`),
    });
    await expect(denied.store.update(bump(5))).rejects.toMatchObject({ code: 'E_IO' });
    expect(readdirSync(dir).filter((name) => name.startsWith(`${JOURNAL}.corrupt`))).toEqual([]);
    // Readable again: every update is there.
    expect(ids(await storeIn(dir, { projectName: 'p' }).store.load())).toEqual(['e1', 'e2', 'e3', 'e4']);
  });

  it('a lost snapshot is rebuilt through backups even when no copy of a damaged file can be made', async () => {
    const { dir, store } = await project(3);
    await store.checkpoint();
    await store.update(bump(4));
    await store.update(bump(5));
    damageLastButOneNewline(file(dir, JOURNAL));
    writeFileSync(file(dir, MAIN), '{"torn');

    const fresh = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: noLinksAndFull().fs });
    expect(ids(await fresh.store.load())).toEqual(['e1', 'e2', 'e3']);
    const replayed = fresh.reports.find((report) => report.action === 'journal-replayed-from-backup');
    expect(replayed?.reason).toMatch(
      /\(1 complete line\(s\) in the journal's torn end not taken; no copy of the journal could be kept: .*ENOSPC: disk full\)$/,
    );
    expect(replayed?.quarantinedPath).toBeUndefined();
  });

  it('checkpoint() folds the journal into the JSON file and keeps the previous snapshot as .bak', async () => {
    const { dir, store } = await project(3);
    const previous = readFileSync(file(dir, MAIN));
    expect(statSync(file(dir, JOURNAL)).size).toBeGreaterThan(encodeHeader('x').length);

    await store.checkpoint();
    const main = readJson(file(dir, MAIN)) as unknown as DashboardState;
    expectUpdates({ ...main }, 3);
    expect(readFileSync(file(dir, `${MAIN}.bak`)).equals(previous)).toBe(true);
    const binding = main[JOURNAL_BINDING_KEY] as { id: string };
    const journal = readFileSync(file(dir, JOURNAL));
    expect(journal.equals(headerFor(binding))).toBe(true);
  });

  it('a crash between the snapshot and journal renames loses and repeats nothing', async () => {
    const dir = tempDir();
    const faulty = new FaultyFileSystem();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0, fileSystem: faulty.fs });
    for (let n = 1; n <= 3; n++) await store.update(bump(n));
    const oldJournal = journalLines(file(dir, JOURNAL));

    // Renames of a checkpoint: backup links → .bak and .journal.bak, snapshot → main, journal → journal.
    faulty.arm({ failAt: 4, methods: ['rename'], code: 'EIO' });
    await expect(store.checkpoint()).rejects.toThrow();
    expect(faulty.injected).toBe(1);
    faulty.arm(undefined);

    // The new snapshot is in place, the old journal still beside it.
    expect(journalLines(file(dir, JOURNAL)).equals(oldJournal)).toBe(true);
    const header = parseHeader(oldJournal);
    if (!('id' in header)) throw new Error(header.reason);
    const main = readJson(file(dir, MAIN)) as unknown as DashboardState;
    const binding = main[JOURNAL_BINDING_KEY] as { id: string; folded_id: string; folded_offset: number };
    expect(binding.id).not.toBe(header.id);
    expect(binding).toMatchObject({ folded_id: header.id, folded_offset: oldJournal.length });
    expectUpdates({ ...main }, 3);

    const fresh = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    expectUpdates(await fresh.store.load(), 3);
    expect(fresh.reports).toEqual([]);
    // Both the failed store and a new one carry on from there.
    expectUpdates(await store.update(bump(4)), 4);
    expectUpdates(await fresh.store.update(bump(5)), 5);
    expectUpdates(await storeIn(dir, { projectName: 'p' }).store.load(), 5);
  });
});

describe('journal: background checkpoints', () => {
  /**
   * The real file system, with the writes into the snapshot's temp file held until `release()`,
   * and what each rename puts in place captured at that moment.
   */
  function gatedFileSystem() {
    const faulty = new FaultyFileSystem();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let gated = 0;
    const placed: Array<{ target: string; bytes: Buffer }> = [];
    let journalPlaced!: () => void;
    const journalRenamed = new Promise<void>((resolve) => {
      journalPlaced = resolve;
    });
    const fs = {
      ...faulty.fs,
      write: async (fd: number, data: Uint8Array, position: number) => {
        const path = fdPaths.get(fd) ?? '';
        if (path.includes(`${MAIN}.tmp-`)) {
          gated += 1;
          await gate;
        }
        return faulty.fs.write(fd, data, position);
      },
      open: async (path: string, mode: Parameters<typeof faulty.fs.open>[1], permissions?: number) => {
        const fd = await faulty.fs.open(path, mode, permissions);
        fdPaths.set(fd, path);
        return fd;
      },
      rename: async (from: string, to: string) => {
        placed.push({ target: to, bytes: readFileSync(from) });
        await faulty.fs.rename(from, to);
        if (to.endsWith(JOURNAL)) journalPlaced();
      },
    };
    const fdPaths = new Map<number, string>();
    return { fs, release, placed, gated: () => gated, journalRenamed };
  }

  /** A store over `gated`'s file system that checkpoints as soon as the journal outgrows the JSON file. */
  async function heldCheckpoint(dir: string, gated: ReturnType<typeof gatedFileSystem>) {
    await storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 }).store.update(bump(1)); // bootstrap
    const opened = storeIn(dir, {
      projectName: 'p',
      checkpointIdleMs: 0,
      checkpointBytes: 1,
      fileSystem: gated.fs,
    });
    // The threshold is the larger of checkpointBytes and the JSON file's size: append until the
    // journal outgrows the file, which starts a background checkpoint, held at its first write.
    let updates = 1;
    while (gated.gated() === 0 && updates < 20) {
      await opened.store.update(bump(++updates));
      // The checkpoint starts after the update resolved; its steps up to the held write need no
      // I/O wait, so one turn of the event loop lets it reach the gate.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(gated.gated()).toBe(1);
    return { ...opened, updates };
  }

  it('writes the snapshot without the lock and carries the lines written meanwhile into the new journal', async () => {
    const dir = tempDir();
    const gated = gatedFileSystem();
    const { store, reports, updates: folding } = await heldCheckpoint(dir, gated);
    const n = folding + 1;
    await store.update(bump(n)); // committed while the snapshot is held: not in it
    expect(gated.placed).toEqual([]); // the update did not wait for the checkpoint
    gated.release();
    await store.close();

    const [snapshot, journal] = gated.placed.filter(
      (p) => p.target.endsWith(MAIN) || p.target.endsWith(JOURNAL),
    );
    const folded = JSON.parse(snapshot?.bytes.toString('utf8') ?? '{}');
    expect(folding).toBeGreaterThan(2);
    expect(folded.total_sessions).toBe(folding); // the view when the checkpoint started
    expect(folded[JOURNAL_BINDING_KEY]).toMatchObject({ folded_id: expect.any(String) });
    const header = parseHeader(journal?.bytes as Buffer);
    if (!('id' in header)) throw new Error(header.reason);
    expect(header.id).toBe(folded[JOURNAL_BINDING_KEY].id);
    const carried = parseEntries(journal?.bytes as Buffer, header.end).entries;
    expect(carried.map((entry) => (entry.change as StatePatch).events?.map((e) => e.event_id))).toEqual([
      [`e${n}`],
    ]);
    expect(reports).toEqual([]);
    // Every update exactly once, for a new reader, and in the JSON file alone after close().
    expectUpdates(await storeIn(dir).store.load(), n);
    expectUpdates(readJson(file(dir, MAIN)) as unknown as DashboardState, n);
  });

  it('a snapshot found corrupt is rebuilt from .bak and .journal.bak up to where it folded it: each update once', async () => {
    const dir = tempDir();
    const gated = gatedFileSystem();
    const { store, updates: folding } = await heldCheckpoint(dir, gated);
    const n = folding + 1;
    await store.update(bump(n)); // in the folded journal after the snapshot's offset, and carried
    gated.release();
    await gated.journalRenamed; // the checkpoint's files are in place
    expect(existsSync(file(dir, `${JOURNAL}.bak`))).toBe(true);

    writeFileSync(file(dir, MAIN), '{"torn'); // the new snapshot is lost
    const fresh = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 });
    // Without stopping the kept journal where the snapshot folded it, e<n> would come twice.
    expectUpdates(await fresh.store.load(), n);
    expect(fresh.reports.map((report) => report.action)).toEqual([
      'restored-from-backup',
      'journal-replayed-from-backup',
    ]);
    // The recovery folded it all into a checkpoint at once: the JSON file alone holds it.
    expectUpdates(readJson(file(dir, MAIN)) as unknown as DashboardState, n);
    expectUpdates(await fresh.store.update(bump(n + 1)), n + 1);
    expectUpdates(await storeIn(dir).store.load(), n + 1);
  });

  it('abandons its snapshot when another process checkpointed first, and leaves no temp file', async () => {
    const dir = tempDir();
    const gated = gatedFileSystem();
    const { store, updates } = await heldCheckpoint(dir, gated);
    const n = updates + 1;
    const other = storeIn(dir, { projectName: 'p', checkpointIdleMs: 0 }).store;
    await other.update(bump(n));
    await other.checkpoint(); // replaces the snapshot the held checkpoint started from
    gated.release();
    await store.close(); // settles the abandoned background checkpoint, then checkpoints itself
    // The held snapshot (without the other store's update) was never renamed into place, and
    // close() found nothing left to fold.
    expect(gated.placed.filter((p) => p.target.endsWith(MAIN))).toEqual([]);
    expect(readJson(file(dir, MAIN)).total_sessions).toBe(n);
    expectUpdates(await storeIn(dir).store.load(), n);
    expect(readdirSync(dir).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });
});

describe('journal: profiles changed field by field (format 2)', () => {
  /** The lines of a journal file after its header, parsed. */
  const linesOf = (path: string) => {
    const data = readFileSync(path);
    const header = parseHeader(data);
    if (!('id' in header)) throw new Error(header.reason);
    return {
      header,
      entries: parseEntries(data, header.end).entries.map((entry) => entry.change as StatePatch),
    };
  };

  const countInvocations = (state: DashboardState) => {
    const coding = state.agents.coding as { total_invocations: number; recent_events: string[] };
    coding.total_invocations += 1;
    coding.recent_events = [...coding.recent_events.slice(-1), `r${coding.total_invocations}`];
  };

  it('writes a changed profile without its unchanged lists, and a list that moved on as its new items', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 60_000 });
    await store.update((state) => {
      state.agents.coding = { ...createProfile('coding'), recent_events: ['r0'] };
    });
    await store.update(countInvocations);
    await store.update(countInvocations);
    const { header, entries } = linesOf(file(dir, JOURNAL));
    expect(header.format).toBe(JOURNAL_FORMAT);
    const changes = entries.map((patch) => patch.agent_fields?.coding);
    // Every value that is not a list, and the list that moved on as its new items only.
    expect(changes.map((change) => change?.set?.total_invocations)).toEqual([1, 2]);
    expect(changes.map((change) => change?.set?.total_tokens)).toEqual([0, 0]);
    expect(changes.map((change) => change?.shift)).toEqual([
      { recent_events: { drop: 0, push: ['r1'] } },
      { recent_events: { drop: 1, push: ['r2'] } },
    ]);
    expect(changes.some((change) => change?.set && 'achievements' in change.set)).toBe(false);
    expect(entries.some((patch) => 'agents' in patch)).toBe(false);
    // A fresh store replays them into the whole profile.
    const { store: reader } = storeIn(dir, { projectName: 'p' });
    expect((await reader.load()).agents.coding).toMatchObject({
      total_invocations: 2,
      recent_events: ['r1', 'r2'],
    });
    await store.close();
  });

  it.each([1, 2])(
    'reads a format %i journal (whole profiles), and folds it before writing a line of the current format',
    async (format) => {
      const { dir, store } = await project(2, { checkpointIdleMs: 60_000 });
      await store.close();
      // Rewrite the journal as an older version wrote it: its header, whole profiles.
      const journalPath = file(dir, JOURNAL);
      const { header } = linesOf(journalPath);
      const oldHeader = encodeLine(JSON.stringify({ agent_metrics_journal: format, id: header.id }));
      const profile = { ...createProfile('legacy'), total_invocations: 7 };
      const oldLine = encodeLine(
        JSON.stringify({
          caps: { max_events: 500, max_sessions: 50 },
          agents: { legacy: profile },
          events: [makeEvent({ event_id: 'e3' })],
        }),
      );
      writeFileSync(journalPath, Buffer.concat([oldHeader, oldLine]));

      const { store: next } = storeIn(dir, { projectName: 'p', checkpointIdleMs: 60_000 });
      const loaded = await next.load();
      expect(loaded.agents.legacy?.total_invocations).toBe(7);
      expect(ids(loaded)).toEqual(['e1', 'e2', 'e3']);
      await next.update(bump(4));
      // The old journal was folded into the JSON file; the new line went to a journal of this format.
      expectFoldedBefore(dir, ['e1', 'e2', 'e3']);
      expect(linesOf(journalPath).header.format).toBe(JOURNAL_FORMAT);
      expect(ids(await next.load())).toEqual(['e1', 'e2', 'e3', 'e4']);
      expect((await next.load()).agents.legacy?.total_invocations).toBe(7);
      await next.close();
    },
  );
});

describe('journal: line encoding', () => {
  it('any JSON text, multi-byte characters included, is one line `<crc32 of its UTF-8> <json>\\n` that parses back', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.integer({ min: 0, max: 1e9 }), (text, n) => {
        const json = JSON.stringify({ caps: { max_events: 5, max_sessions: 5 }, set: { text, n } });
        const line = encodeLine(json);
        const body = Buffer.from(json, 'utf8');
        expect(line.subarray(9, 9 + body.length).equals(body)).toBe(true);
        expect(line.toString('latin1', 0, 9)).toBe(`${crc32(body).toString(16).padStart(8, '0')} `);
        expect(line.length).toBe(body.length + 10);
        expect(line[line.length - 1]).toBe(0x0a);
        const parsed = parseEntries(line, 0);
        expect(parsed.entries.map((entry) => entry.change)).toEqual([JSON.parse(json)]);
      }),
      { numRuns: 300 },
    );
  });
});
