import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import {
  encodeHeader,
  encodeLine,
  JOURNAL_FORMAT,
  parseEntries,
  parseHeader,
} from '../../src/store/journal-format.js';
import { file, journalLines, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const JOURNAL = '.agent_metrics.journal';

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

  it('rejects an event whose change would be invalid, writing nothing', async () => {
    const { dir, store, metrics } = await recording();
    await store.update((state) => {
      state.total_tokens = Number.MAX_SAFE_INTEGER - 5;
    });
    const lines = journalChanges(dir).lines;
    await expect(
      metrics.recordEvent({ agentName: 'coding', status: 'success', inputTokens: 10 }),
    ).rejects.toMatchObject({
      code: 'E_INVALID_STATE',
    });
    expect(journalChanges(dir).lines.equals(lines)).toBe(true);
    const state = await storeIn(dir).store.load();
    expect(state.events).toEqual([]);
    expect(state.agents).toEqual({});
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
