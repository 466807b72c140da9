import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DashboardState } from '../../src/model/types.js';
import {
  encodeHeader,
  encodeLine,
  JOURNAL_RESERVE_BYTES,
  JOURNAL_RESERVE_LOW_WATER,
  parseEntries,
} from '../../src/store/journal-format.js';
import { makeEvent } from '../helpers/builders.js';
import { file, journalLines, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const JOURNAL = '.agent_metrics.journal';

function bump(n: number) {
  return (state: DashboardState) => {
    state.events.push(makeEvent({ event_id: `e${n}` }));
    state.total_sessions += 1;
  };
}

const ids = (state: DashboardState) => state.events.map((event) => event.event_id);
const change = (n: number) =>
  encodeLine(JSON.stringify({ caps: { max_events: 500, max_sessions: 50 }, set: { n } }));

describe('journal reserve: parsing', () => {
  const header = encodeHeader('j');
  const lines = Buffer.concat([header, change(1), change(2)]);

  it('ends the lines at the first NUL byte, and the reserve is not a torn end', () => {
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

  it('does not read a line past a lost page: it is counted with the torn end', () => {
    // A power cut kept a later page and not the one before it (NUL bytes, as reserved).
    const later = change(4);
    const data = Buffer.concat([lines, Buffer.alloc(4096), later, Buffer.alloc(5000)]);
    const parsed = parseEntries(data, header.length);
    expect(parsed.entries).toHaveLength(2);
    expect(parsed).toMatchObject({ validEnd: lines.length, tornBytes: 4096 + later.length, damaged: [] });
  });

  it('takes a newline inside the reserve for nothing', () => {
    const data = Buffer.concat([lines, Buffer.from([0, 0, 0x0a, 0])]);
    expect(parseEntries(data, header.length)).toMatchObject({ validEnd: lines.length, tornBytes: 3 });
  });
});

describe('journal reserve: writing', () => {
  it('writes NUL bytes ahead of the lines, and the next lines over them without growing the file', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { checkpointIdleMs: 0 });
    await store.update(bump(1)); // the first write is a checkpoint: a journal with its header only
    const path = file(dir, JOURNAL);
    expect(statSync(path).size).toBe(journalLines(path).length);

    await store.update(bump(2));
    const first = journalLines(path).length;
    expect(statSync(path).size).toBe(first + JOURNAL_RESERVE_BYTES);
    expect(readFileSync(path).subarray(first).equals(Buffer.alloc(JOURNAL_RESERVE_BYTES))).toBe(true);

    await store.update(bump(3));
    expect(journalLines(path).length).toBeGreaterThan(first);
    expect(statSync(path).size).toBe(first + JOURNAL_RESERVE_BYTES);
    expect(ids(await storeIn(dir).store.load())).toEqual(['e1', 'e2', 'e3']);
  });

  it('another instance finds the lines written into the reserve (same file size) and loses none', async () => {
    const dir = tempDir();
    const a = storeIn(dir, { checkpointIdleMs: 0 }).store;
    const b = storeIn(dir, { checkpointIdleMs: 0 }).store;
    await a.update(bump(1));
    await a.update(bump(2));
    await b.update(bump(3)); // b reads the journal whole: lines 2, then the reserve
    const size = statSync(file(dir, JOURNAL)).size;
    await a.update(bump(4)); // a must find b's line, which left the size alone
    await b.update(bump(5));
    expect(statSync(file(dir, JOURNAL)).size).toBe(size);
    const state = await storeIn(dir).store.load();
    expect(ids(state)).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
    expect(state.total_sessions).toBe(5);
  });

  it('finds more lines than its first read window holds', async () => {
    const dir = tempDir();
    const a = storeIn(dir, { checkpointIdleMs: 0, checkpointBytes: 64 << 20 }).store;
    const b = storeIn(dir, { checkpointIdleMs: 0, checkpointBytes: 64 << 20 }).store;
    await a.update(bump(1));
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
    await store.update(bump(2));
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

  it('cuts off a line a power cut left past a lost page, with the reserve, at the next write', async () => {
    const dir = tempDir();
    const { store } = storeIn(dir, { checkpointIdleMs: 0 });
    for (let n = 1; n <= 3; n++) await store.update(bump(n));
    const path = file(dir, JOURNAL);
    const lines = journalLines(path);

    // The 4th line as a sibling project wrote it, found one page further: the page before it lost.
    const sibling = tempDir();
    writeFileSync(file(sibling, '.agent_metrics.json'), readFileSync(file(dir, '.agent_metrics.json')));
    writeFileSync(file(sibling, JOURNAL), lines);
    await storeIn(sibling, { checkpointIdleMs: 0 }).store.update(bump(4));
    const fourth = journalLines(file(sibling, JOURNAL)).subarray(lines.length);
    const data = readFileSync(path);
    fourth.copy(data, lines.length + 4096);
    writeFileSync(path, data);

    const reader = storeIn(dir, { checkpointIdleMs: 0 });
    expect(ids(await reader.store.load())).toEqual(['e1', 'e2', 'e3']);
    expect(reader.reports).toEqual([]); // a lock-free read repairs nothing

    await reader.store.update(bump(5));
    expect(reader.reports.map((report) => report.action)).toEqual(['journal-tail-truncated']);
    expect(reader.reports[0]?.reason).toContain(`${4096 + fourth.length} bytes`);
    expect(ids(await storeIn(dir).store.load())).toEqual(['e1', 'e2', 'e3', 'e5']);
    expect(readFileSync(path).includes(fourth)).toBe(false);
  });
});
