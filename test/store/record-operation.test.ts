import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import type { AgentEvent } from '../../src/model/types.js';
import type { FileSystem } from '../../src/store/file-system.js';
import {
  encodeHeader,
  encodeLine,
  JOURNAL_FORMAT,
  parseEntries,
  parseHeader,
} from '../../src/store/journal-format.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { makeEvent } from '../helpers/builders.js';
import { PowerCutFileSystem } from '../helpers/power-cut-fs.js';
import { file, journalLines, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const JOURNAL = '.agent_metrics.journal';

const ids = (state: { events: Array<{ event_id: string }> }) => state.events.map((event) => event.event_id);

function journalChanges(dir: string) {
  const data = journalLines(file(dir, JOURNAL));
  const header = parseHeader(data);
  if (!('id' in header)) throw new Error(header.reason);
  return { header, lines: data, entries: parseEntries(data, header.end).entries };
}

/** A store with its journal in place (the first write is a checkpoint) and an AgentMetrics on it. */
async function recording() {
  const dir = tempDir();
  const { store, reports } = storeIn(dir, { checkpointIdleMs: 0 });
  const metrics = new AgentMetrics({ store, strict: true });
  const sessionId = await metrics.startSession();
  return { dir, store, reports, metrics, sessionId };
}

describe('MetricsStore.recordEvent: events journaled as operations', () => {
  it('writes one operation line per event, and a fresh load replays them into the writer’s state', async () => {
    const { dir, store, metrics, sessionId } = await recording();
    const before = journalChanges(dir).lines.length;
    for (let n = 0; n < 3; n++) {
      await metrics.recordEvent({
        agentName: n === 1 ? 'reviewer' : 'coding',
        status: n === 2 ? 'error' : 'success',
        sessionId,
        inputTokens: 100 * (n + 1),
        artifacts: ['commit:abc', 'lines:+3/-1'],
      });
    }
    const { header, lines, entries } = journalChanges(dir);
    expect(header.format).toBe(JOURNAL_FORMAT);
    expect(entries.map((entry) => (entry.change as { op?: string }).op)).toEqual([
      'record_event',
      'record_event',
      'record_event',
    ]);
    // An operation line is the event and a few values: well under the ~1.4 KB of a patch.
    expect((lines.length - before) / 3).toBeLessThan(900);

    const written = await store.load();
    const replayed = await storeIn(dir).store.load();
    expect(JSON.parse(JSON.stringify(replayed))).toEqual(JSON.parse(JSON.stringify(written)));
    expect(replayed.agents.coding).toMatchObject({ total_invocations: 2, failed_invocations: 1 });
    expect(replayed.total_tokens).toBe(600);
    expect((replayed.sessions_in_progress as Array<{ total_tokens: number }>)[0]?.total_tokens).toBe(600);
  });

  it("refuses an event that would push the project's token total past the largest exact integer as bad input, writing nothing", async () => {
    const { dir, store, metrics } = await recording();
    await store.update((state) => {
      state.total_tokens = Number.MAX_SAFE_INTEGER - 5;
    });
    const lines = journalChanges(dir).lines;
    await expect(
      metrics.recordEvent({ agentName: 'coding', status: 'success', inputTokens: 10 }),
    ).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      issues: [
        {
          path: 'total_tokens',
          message: expect.stringMatching(
            /^the event's 10 tokens would push the project's total_tokens past 9007199254740991/,
          ),
        },
      ],
    });
    expect(journalChanges(dir).lines.equals(lines)).toBe(true);
    const state = await storeIn(dir).store.load();
    expect(state.events).toEqual([]);
    expect(state.agents).toEqual({});
    // The store is not stuck: an event that fits is recorded.
    await metrics.recordEvent({ agentName: 'coding', status: 'success', inputTokens: 5 });
    expect((await storeIn(dir).store.load()).total_tokens).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("refuses an event that would overflow its agent's or its session's token total, naming the field", async () => {
    const { dir, store, metrics, sessionId } = await recording();
    await metrics.recordEvent({ agentName: 'coding', status: 'success', inputTokens: 10 });
    await store.update((state) => {
      (state.agents.coding as { total_tokens: number }).total_tokens = Number.MAX_SAFE_INTEGER - 5;
    });
    const lines = journalChanges(dir).lines;
    await expect(
      metrics.recordEvent({ agentName: 'coding', status: 'success', inputTokens: 10 }),
    ).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      issues: [
        { path: 'total_tokens', message: expect.stringContaining("push agent coding's total_tokens past") },
      ],
    });
    await store.update((state) => {
      ((state.sessions_in_progress as unknown[])[0] as { total_tokens: number }).total_tokens =
        Number.MAX_SAFE_INTEGER - 5;
    });
    const sessionLines = journalChanges(dir).lines;
    await expect(
      metrics.recordEvent({ agentName: 'github', sessionId, status: 'success', inputTokens: 10 }),
    ).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      issues: [
        {
          path: 'total_tokens',
          message: expect.stringContaining(`push session ${sessionId}'s total_tokens past`),
        },
      ],
    });
    expect(journalChanges(dir).lines.equals(sessionLines)).toBe(true);
    expect(sessionLines.subarray(0, lines.length).equals(lines)).toBe(true);
    expect((await storeIn(dir).store.load()).agents.github).toBeUndefined();
  });

  it('rejects an event whose change to an existing profile would be invalid otherwise, naming the field', async () => {
    const { dir, store, metrics } = await recording();
    await metrics.recordEvent({ agentName: 'coding', status: 'success', inputTokens: 10 });
    await store.update((state) => {
      (state.agents.coding as { total_invocations: number }).total_invocations = Number.MAX_SAFE_INTEGER;
    });
    const lines = journalChanges(dir).lines;
    await expect(metrics.recordEvent({ agentName: 'coding', status: 'success' })).rejects.toMatchObject({
      code: 'E_INVALID_STATE',
      paths: ['agents.coding.total_invocations'],
    });
    expect(journalChanges(dir).lines.equals(lines)).toBe(true);
  });

  it('rejects a malformed event with the path of what is wrong, before recording reads it', async () => {
    const { dir, store } = await recording();
    const lines = journalChanges(dir).lines;
    const event = { ...makeEvent({ event_id: 'bad' }), artifacts: [42] } as unknown as AgentEvent;
    await expect(store.recordEvent(event)).rejects.toMatchObject({
      code: 'E_INVALID_STATE',
      paths: ['events[0].artifacts[0]'],
    });
    expect(journalChanges(dir).lines.equals(lines)).toBe(true);
  });

  it('keeps in memory what its line holds, for an event read through getters or holding -0', async () => {
    const { dir, store } = await recording();
    let reads = 0;
    const changing = makeEvent({ event_id: 'getter' });
    // A value that changes at each read: the line and the state must hold the same one.
    Object.defineProperty(changing, 'ticket_key', { enumerable: true, get: () => `AI-${++reads}` });
    await store.recordEvent(changing);
    await store.recordEvent(
      makeEvent({ event_id: 'minus-zero', duration_seconds: -0, estimated_cost_usd: -0 }),
    );
    const written = await store.load();
    const replayed = await storeIn(dir).store.load();
    expect(replayed.events).toStrictEqual(written.events);
    expect(Object.is(written.events[1]?.duration_seconds, 0)).toBe(true);
    expect(written.agents.coding).toStrictEqual(replayed.agents.coding);
  });

  it('reports an event whose getter throws as an invalid state, and keeps a key a polluted prototype has', async () => {
    const { dir, store } = await recording();
    const lines = journalChanges(dir).lines;
    const throwing = Object.defineProperty(makeEvent({ event_id: 'throws' }), 'ticket_key', {
      enumerable: true,
      get: () => {
        throw new Error('boom');
      },
    });
    await expect(store.recordEvent(throwing)).rejects.toMatchObject({ code: 'E_INVALID_STATE' });
    expect(journalChanges(dir).lines.equals(lines)).toBe(true);

    Object.defineProperty(Object.prototype, 'extra', {
      set() {},
      get: () => 'inherited',
      configurable: true,
    });
    try {
      await store.recordEvent({ ...makeEvent({ event_id: 'polluted' }), extra: 'own' });
    } finally {
      delete (Object.prototype as { extra?: unknown }).extra;
    }
    const written = journalChanges(dir).entries.map(
      (entry) => entry.change as { event?: { extra?: unknown } },
    );
    expect(written.at(-1)?.event?.extra).toBe('own');
    expect(Object.hasOwn((await store.load()).events.at(-1) ?? {}, 'extra')).toBe(true);
  });

  it('rejects what is not an event at all as an invalid state, writing nothing', async () => {
    const { dir, store } = await recording();
    const lines = journalChanges(dir).lines;
    for (const notAnEvent of [undefined, null, 42, []]) {
      await expect(store.recordEvent(notAnEvent as unknown as AgentEvent)).rejects.toMatchObject({
        code: 'E_INVALID_STATE',
        paths: ['events[0]'],
      });
    }
    expect(journalChanges(dir).lines.equals(lines)).toBe(true);
  });

  it('mixes with update() calls in one batch, each seeing the changes before it', async () => {
    const { dir, store, metrics } = await recording();
    const calls: Array<Promise<unknown>> = [];
    for (let n = 0; n < 30; n++) {
      calls.push(
        n % 3 === 0
          ? store.update((state) => {
              state.total_sessions += 1;
            })
          : metrics.recordEvent({ agentName: `a${n % 2}`, status: 'success', inputTokens: 1 }),
      );
    }
    await Promise.all(calls);
    const kinds = journalChanges(dir).entries.map((entry) => ('op' in entry.change ? 'op' : 'patch'));
    expect(kinds.filter((kind) => kind === 'op')).toHaveLength(20);
    const state = await storeIn(dir).store.load();
    expect(state.total_sessions).toBe(11); // the session started, then 10 updates
    expect(state.total_tokens).toBe(20);
    expect(state.events).toHaveLength(20);
    expect((state.agents.a0?.total_invocations ?? 0) + (state.agents.a1?.total_invocations ?? 0)).toBe(20);
  });

  it('reads an operation it does not know, or one missing what replay reads, as a damaged line', () => {
    const caps = { max_events: 500, max_sessions: 50 };
    const event = { event_id: 'e1', agent_name: 'coding', artifacts: [] };
    const lines = [
      { op: 'record_event', at: 't', caps, event },
      { op: 'delete_everything', at: 't', caps, event },
      { op: 'record_event', at: 't', caps, event: { ...event, artifacts: 'commit:a' } },
      { op: 'record_event', caps, event },
      { caps, set: { total_sessions: 1 } },
    ];
    const header = encodeHeader('j');
    const data = Buffer.concat([header, ...lines.map((line) => encodeLine(JSON.stringify(line)))]);
    const parsed = parseEntries(data, header.length);
    expect(parsed.entries.map((entry) => ('op' in entry.change ? entry.change.op : 'patch'))).toEqual([
      'record_event',
      'patch',
    ]);
    expect(parsed.damaged.map((line) => line.reason)).toEqual([
      'not a change',
      'not a change',
      'not a change',
    ]);
  });
});

describe('MetricsStore.recordEvent: power cuts', () => {
  const DIR = '/disk/p';
  const EVENTS = 5;

  /** Passes calls to `disk` until call `cutAt`; then the power is off (every call fails). */
  function switchboard(disk: PowerCutFileSystem, cutAt: number) {
    let calls = 0;
    let image: PowerCutFileSystem | undefined;
    const fs = {} as Record<keyof FileSystem, unknown>;
    const methods = Object.getOwnPropertyNames(PowerCutFileSystem.prototype).filter(
      (name) => name !== 'constructor' && !['crashImage', 'list', 'contents'].includes(name),
    );
    for (const method of methods) {
      fs[method as keyof FileSystem] = async (...args: unknown[]) => {
        calls += 1;
        if (calls >= cutAt) {
          image ??= disk.crashImage();
          throw Object.assign(new Error('power cut'), { code: 'EIO' });
        }
        return (disk[method as keyof FileSystem] as (...a: unknown[]) => unknown).apply(disk, args);
      };
    }
    return { fs: fs as unknown as FileSystem, image: () => image ?? disk.crashImage(), calls: () => calls };
  }

  it('keeps every acknowledged recordEvent, replays a prefix, and a writer continues after it', async () => {
    let cuts = 0;
    for (let cutAt = 1; cutAt < 400; cutAt++) {
      cuts = cutAt;
      const disk = new PowerCutFileSystem();
      await disk.mkdir('/disk');
      const root = await disk.open('/', 'read');
      await disk.fsync(root);
      await disk.close(root);
      const board = switchboard(disk, cutAt);
      const store = new MetricsStore({
        projectName: 'p',
        dir: DIR,
        fileSystem: board.fs,
        checkpointIdleMs: 0,
      });
      let acked = 0;
      for (let n = 1; n <= EVENTS; n++) {
        const event = makeEvent({ event_id: `e${n}`, agent_name: n % 2 ? 'coding' : 'review' });
        const ok = await store.recordEvent(event).then(
          () => true,
          () => false,
        );
        if (!ok) break;
        acked = n;
        if (n === 2) await store.checkpoint().catch(() => undefined);
      }
      const image = board.image();
      const after = new MetricsStore({ projectName: 'p', dir: DIR, fileSystem: image, checkpointIdleMs: 0 });
      const state = await after.load();
      const seen = ids(state);
      const context = `cut before call ${cutAt}`;
      expect(seen, context).toEqual(Array.from({ length: seen.length }, (_, i) => `e${i + 1}`));
      expect(seen.length, context).toBeGreaterThanOrEqual(acked);
      const invocations = Object.values(state.agents).reduce((sum, p) => sum + p.total_invocations, 0);
      expect(invocations, context).toBe(seen.length);
      await after.recordEvent(makeEvent({ event_id: 'next' }));
      // What the next writer acknowledged survives the next power cut too.
      const again = await new MetricsStore({
        projectName: 'p',
        dir: DIR,
        fileSystem: image.crashImage(),
      }).load();
      expect(ids(again), context).toEqual([...seen, 'next']);
      if (board.calls() < cutAt) break; // the run finished before the cut: every cut point done
    }
    expect(cuts).toBeGreaterThan(50);
    expect(cuts).toBeLessThan(399);
  });
});

describe('MetricsStore.recordEvent with many agents (profiles kept as layers, see model/profiles.ts)', () => {
  it('keeps every profile right across layers, flattenings, reads, a removal and a reload from the files', async () => {
    const { dir, store, metrics } = await recording();
    const names = Array.from({ length: 120 }, (_, index) =>
      index % 10 === 3 ? String(index) : `agent-${index}`,
    );
    const expected = new Map<string, number>();
    for (let round = 0; round < 3; round++) {
      for (const [index, name] of names.entries()) {
        // Agents appear over time, in an order that is not the names' own.
        if ((index * 7) % 3 > round) continue;
        await metrics.recordEvent({ agentName: name, status: 'success', inputTokens: index + 1 });
        expected.set(name, (expected.get(name) ?? 0) + index + 1);
        // A read now and then makes the flat form midway (then the base of later layers).
        if (index % 29 === 0)
          expect((await store.load()).agents[name]?.total_tokens).toBe(expected.get(name));
      }
    }
    await store.update((state) => {
      delete state.agents['agent-1'];
    });
    expected.delete('agent-1');
    const check = (state: Awaited<ReturnType<MetricsStore['load']>>) => {
      expect(Object.keys(state.agents).sort()).toEqual([...expected.keys()].sort());
      for (const [name, tokens] of expected) expect(state.agents[name]?.total_tokens).toBe(tokens);
    };
    const live = await store.load();
    check(live);
    // The order a plain object copied at each change would have: first seen first, integer-like names ahead.
    const firstSeen = [...expected.keys()];
    const integers = firstSeen.filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(a) - Number(b));
    expect(Object.keys(live.agents)).toEqual([
      ...integers,
      ...firstSeen.filter((name) => !/^\d+$/.test(name)),
    ]);
    expect((await store.getStats()).agentCount).toBe(expected.size);
    // From the journal (replayed), then from the checkpointed file.
    check(await new MetricsStore({ projectName: 'test-project', dir }).load());
    await store.close();
    check(await new MetricsStore({ projectName: 'test-project', dir }).load());
  });
});
