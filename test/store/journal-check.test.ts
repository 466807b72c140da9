import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import { nodeFileSystem } from '../../src/store/file-system.js';
import { checkJournal, withJournal } from '../../src/store/journal-check.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('withJournal', () => {
  it('copies the snapshot’s values: changing the snapshot afterwards changes neither the result nor a later replay', async () => {
    const dir = tempDir();
    const store = new MetricsStore({ projectName: 'p', dir, durability: 'none', checkpointIdleMs: 0 });
    const metrics = new AgentMetrics({ store, strict: true });
    await metrics.startSession({ sessionId: 's0' });
    await metrics.startSession({ sessionId: 's1' });
    await store.checkpoint();
    await metrics.recordEvent({ agentName: 'a', status: 'success', sessionId: 's0', inputTokens: 10 });
    await store.close({ checkpoint: false });
    const snapshot = JSON.parse(readFileSync(join(dir, '.agent_metrics.json'), 'utf8'));
    const { patches } = await checkJournal(nodeFileSystem, join(dir, '.agent_metrics.journal'), snapshot);
    const tokensOf = (state: Record<string, unknown>) =>
      (state.sessions_in_progress as Array<{ total_tokens: number }>).map((session) => session.total_tokens);

    const first = withJournal(snapshot, patches);
    expect(tokensOf(first)).toEqual([10, 0]);
    // The snapshot's list made invalid: a load records no event into an invalid list.
    snapshot.sessions_in_progress[1].total_tokens = -5;
    expect(tokensOf(first)).toEqual([10, 0]);
    const second = withJournal(snapshot, patches);
    expect(tokensOf(second)).toEqual([0, -5]);
    expect(tokensOf(withJournal(structuredClone(snapshot), patches))).toEqual([0, -5]);
  });
});
