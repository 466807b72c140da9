import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DashboardState } from '../../src/model/types.js';
import { type FileSystem, nodeFileSystem } from '../../src/store/file-system.js';
import {
  encodeHeader,
  encodeLine,
  JOURNAL_RESERVE_AFTER,
  JOURNAL_RESERVE_BYTES,
  JOURNAL_RESERVE_LOW_WATER,
  parseEntries,
} from '../../src/store/journal-format.js';
import { run } from '../cli/helpers.js';
import { bump } from '../helpers/builders.js';
import { corruptFilesIn, file, journalLines, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const JOURNAL = '.agent_metrics.journal';

const ids = (state: DashboardState) => state.events.map((event) => event.event_id);
const change = (n: number) =>
  encodeLine(JSON.stringify({ caps: { max_events: 500, max_sessions: 50 }, set: { n } }));

describe('journal reserve: parsing', () => {
  const header = encodeHeader('j');
  const lines = Buffer.concat([header, change(1), change(2)]);

  it('takes the NUL bytes after the lines for the reserve, not for a torn end', () => {
    const parsed = parseEntries(Buffer.concat([lines, Buffer.alloc(9000)]), header.length);
    expect(parsed.entries.map((entry) => (entry.change as { set?: unknown }).set)).toEqual([
      { n: 1 },
      { n: 2 },
    ]);
    expect(parsed).toMatchObject({ validEnd: lines.length, tornBytes: 0, damaged: [] });
  });

  it('counts a line cut short by the reserve as the torn end', () => {
    const partial = change(3).subarray(0, 20);
    const parsed = parseEntries(Buffer.concat([lines, partial, Buffer.alloc(100)]), header.length);
    expect(parsed.entries).toHaveLength(2);
    expect(parsed).toMatchObject({ validEnd: lines.length, tornBytes: partial.length });
  });

  it('reads NUL bytes inside the lines as damage, keeping the line they run into when good lines follow, else the torn end', () => {
    // A power cut kept a later page and not the one before it (NUL bytes, as reserved): the
    // NUL bytes run into the line after the lost page (no newline in between).
    const later = Buffer.concat([change(4), change(5)]);
    const parsed = parseEntries(
      Buffer.concat([lines, Buffer.alloc(4096), later, Buffer.alloc(5000)]),
      header.length,
    );
    expect(parsed.entries.map((entry) => (entry.change as { set?: unknown }).set)).toEqual([
      { n: 1 },
      { n: 2 },
      { n: 4 },
      { n: 5 },
    ]);
    expect(parsed).toMatchObject({
      tornBytes: 0,
      damaged: [{ offset: lines.length, reason: 'checksum mismatch' }],
    });

    // As the last line, the NUL bytes and the line after them are the torn end (neither was
    // acknowledged): cut off together.
    const alone = parseEntries(
      Buffer.concat([lines, Buffer.alloc(4096), change(4), Buffer.alloc(9)]),
      header.length,
    );
    expect(alone).toMatchObject({ validEnd: lines.length, tornBytes: 4096 + change(4).length, damaged: [] });
  });

  it('takes a newline inside the reserve for nothing', () => {
    const data = Buffer.concat([lines, Buffer.from([0, 0, 0x0a, 0])]);
    expect(parseEntries(data, header.length)).toMatchObject({ validEnd: lines.length, tornBytes: 3 });
  });
});

describe('journal reserve: writing', () => {
  /** Lines past `JOURNAL_RESERVE_AFTER`: one update with a large root value. */
  const large = (state: DashboardState) => {
    state.padding = 'x'.repeat(JOURNAL_RESERVE_AFTER);
  };

  it('lays no reserve in a journal holding few lines: a store written to now and then appends', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { checkpointIdleMs: 0 });
    await store.update(bump(1)); // the first write is a checkpoint: a journal with its header only
    const path = file(dir, JOURNAL);
    for (let n = 2; n <= 4; n++) {
      await store.update(bump(n));
      expect(statSync(path).size).toBe(journalLines(path).length);
      // What an idle checkpoint does between two events far apart: a new, header-only journal.
      await store.checkpoint();
    }
    expect(ids(await storeIn(dir).store.load())).toEqual(['e1', 'e2', 'e3', 'e4']);
  });

  it('writes NUL bytes ahead of the lines once they pass a threshold, and the next lines over them', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { checkpointIdleMs: 0 });
    await store.update(bump(1));
    await store.update(large);
    const path = file(dir, JOURNAL);
    const first = journalLines(path).length;
    expect(statSync(path).size).toBe(first + JOURNAL_RESERVE_BYTES);
    expect(readFileSync(path).subarray(first).equals(Buffer.alloc(JOURNAL_RESERVE_BYTES))).toBe(true);

    await store.update(bump(3));
    expect(journalLines(path).length).toBeGreaterThan(first);
    expect(statSync(path).size).toBe(first + JOURNAL_RESERVE_BYTES);
    expect(ids(await storeIn(dir).store.load())).toEqual(['e1', 'e3']);
  });

  it('another instance finds the lines written into the reserve (same file size) and loses none', async () => {
    const dir = tempDir();
    const a = storeIn(dir, { checkpointIdleMs: 0 }).store;
    const b = storeIn(dir, { checkpointIdleMs: 0 }).store;
    await a.update(bump(1));
    await a.update(large);
    await b.update(bump(3)); // b reads the journal whole: the lines, then the reserve
    const size = statSync(file(dir, JOURNAL)).size;
    await a.update(bump(4)); // a must find b's line, which left the size alone
    await b.update(bump(5));
    expect(statSync(file(dir, JOURNAL)).size).toBe(size);
    const state = await storeIn(dir).store.load();
    expect(ids(state)).toEqual(['e1', 'e3', 'e4', 'e5']);
    expect(state.total_sessions).toBe(4);
  });

  it('finds more lines than its first read window holds', async () => {
    const dir = tempDir();
    const a = storeIn(dir, { checkpointIdleMs: 0, checkpointBytes: 64 << 20 }).store;
    const b = storeIn(dir, { checkpointIdleMs: 0, checkpointBytes: 64 << 20 }).store;
    await a.update(bump(1));
    await a.update(large);
    await b.update(bump(2)); // b's view: the journal up to its own line
    const from = journalLines(file(dir, JOURNAL)).length;
    const padding = 'x'.repeat(1000);
    for (let n = 3; n <= 40; n++) {
      await a.update((state) => {
        bump(n)(state);
        state.padding = `${n}${padding}`;
      });
    }
    expect(journalLines(file(dir, JOURNAL)).length - from).toBeGreaterThan(32 * 1024);
    await b.update(bump(41));
    const state = await storeIn(dir).store.load();
    expect(state.total_sessions).toBe(41);
    expect(ids(state)).toEqual(Array.from({ length: 41 }, (_, i) => `e${i + 1}`));
  });

  it('lays a new reserve when the lines come within the low-water mark of its end', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { checkpointIdleMs: 0, checkpointBytes: 64 << 20 });
    await store.update(bump(1));
    await store.update(large);
    const path = file(dir, JOURNAL);
    const reserved = statSync(path).size;
    // One line that leaves less than the low-water mark of the reserve.
    const padding = 'x'.repeat(JOURNAL_RESERVE_BYTES - JOURNAL_RESERVE_LOW_WATER);
    await store.update((state) => {
      state.padding = padding;
    });
    const end = journalLines(path).length;
    expect(end).toBeGreaterThan(reserved - JOURNAL_RESERVE_LOW_WATER);
    expect(end).toBeLessThan(reserved);
    expect(statSync(path).size).toBe(end + JOURNAL_RESERVE_BYTES);
    expect((await storeIn(dir).store.load()).padding).toBe(padding);
  });

  it('takes a line the disk has room for without the reserve (the reserve is best effort)', async () => {
    const dir = tempDir();
    const opened = new Map<number, string>();
    let limit = Number.POSITIVE_INFINITY;
    let reserveWrites = 0;
    const nearlyFull: FileSystem = {
      ...nodeFileSystem,
      async open(path, mode, permissions) {
        const fd = await nodeFileSystem.open(path, mode, permissions);
        opened.set(fd, path);
        return fd;
      },
      async write(fd, data, position) {
        if (data[0] === 0) reserveWrites++;
        if (opened.get(fd)?.endsWith(JOURNAL) && position + data.length > limit) {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        }
        await nodeFileSystem.write(fd, data, position);
      },
    };
    const { store } = storeIn(dir, { checkpointIdleMs: 0, fileSystem: nearlyFull });
    await store.update(bump(1));
    limit = statSync(file(dir, JOURNAL)).size + 256 * 1024; // room for lines, not for 1 MiB more
    await store.update(large);
    await store.update(bump(3));
    await store.update(bump(4));
    expect(ids(await storeIn(dir).store.load())).toEqual(['e1', 'e3', 'e4']);
    const path = file(dir, JOURNAL);
    expect(statSync(path).size).toBe(journalLines(path).length); // what part of it was written is cut off
    expect(reserveWrites).toBe(1); // not tried again on every write before the next checkpoint
    await store.checkpoint();
    limit = Number.POSITIVE_INFINITY;
    await store.update((state) => {
      state.padding = 'y'.repeat(JOURNAL_RESERVE_AFTER);
    });
    expect(reserveWrites).toBe(2);
    expect(statSync(path).size).toBe(journalLines(path).length + JOURNAL_RESERVE_BYTES);
  });

  it('leaves out a line a power cut left past a lost page at the next write, keeping a copy of the journal', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { checkpointIdleMs: 0 });
    for (let n = 1; n <= 3; n++) await store.update(bump(n));
    await store.update(large);
    const path = file(dir, JOURNAL);
    const lines = journalLines(path);

    // The 5th line as a sibling project wrote it, found one page further: the page before it lost.
    const sibling = tempDir();
    writeFileSync(file(sibling, '.agent_metrics.json'), readFileSync(file(dir, '.agent_metrics.json')));
    writeFileSync(file(sibling, JOURNAL), lines);
    await storeIn(sibling, { checkpointIdleMs: 0 }).store.update(bump(5));
    const fifth = journalLines(file(sibling, JOURNAL)).subarray(lines.length);
    const data = readFileSync(path);
    fifth.copy(data, lines.length + 4096);
    writeFileSync(path, data);

    const reader = storeIn(dir, { checkpointIdleMs: 0 });
    expect(ids(await reader.store.load())).toEqual(['e1', 'e2', 'e3']);
    expect(reader.reports).toEqual([]); // a lock-free read repairs nothing

    await reader.store.update(bump(6));
    expect(reader.reports.map((report) => report.action)).toEqual(['journal-tail-truncated']);
    expect(reader.reports[0]?.reason).toContain(`${4096 + fifth.length} bytes`);
    expect(readFileSync(reader.reports[0]?.quarantinedPath as string).equals(data)).toBe(true);
    expect(ids(await storeIn(dir).store.load())).toEqual(['e1', 'e2', 'e3', 'e6']);
    expect(readFileSync(path).includes(fifth)).toBe(false);
  });
});

describe('journal reserve: NUL bytes inside acknowledged lines (a zeroed sector)', () => {
  /** Updates 1..5 acknowledged (1 the checkpoint), with 16 bytes inside update 3's line overwritten. */
  async function damagedProject(filler: number): Promise<string> {
    const dir = tempDir();
    const { store } = storeIn(dir, { checkpointIdleMs: 0 });
    for (let n = 1; n <= 5; n++) await store.update(bump(n));
    const path = file(dir, JOURNAL);
    const data = readFileSync(path);
    const lines = journalLines(path);
    let start = 0;
    for (let line = 0; line < 2; line++) start = lines.indexOf(0x0a, start) + 1; // header, update 2
    data.fill(filler, start + 20, start + 36);
    writeFileSync(path, data);
    return dir;
  }

  it.each([
    ['NUL', 0x00],
    ['X', 0x58],
  ])(
    'skips the damaged line, keeps a copy, and keeps the acknowledged lines after it (%s bytes)',
    async (_name, filler) => {
      const dir = await damagedProject(filler);
      expect(ids(await storeIn(dir).store.load())).toEqual(['e1', 'e2', 'e4', 'e5']);
      const writer = storeIn(dir, { checkpointIdleMs: 0 });
      await writer.store.update(bump(6));
      expect(writer.reports.map((report) => report.action)).toEqual(['journal-repaired']);
      expect(corruptFilesIn(dir)).toHaveLength(1);
      expect(ids(await storeIn(dir).store.load())).toEqual(['e1', 'e2', 'e4', 'e5', 'e6']);
    },
  );

  it('verify and repair --dry-run report it as damage, not as a torn end to cut off', async () => {
    const dir = await damagedProject(0x00);
    const verify = await run(['verify', '--dir', dir, '--json']);
    expect(JSON.parse(verify.stdout).journal).toMatchObject({ status: 'damaged', changes: 3 });
    expect(verify.code).toBe(1);
    expect((await run(['repair', '--dir', dir, '--dry-run'])).code).toBe(1);
  });
});
