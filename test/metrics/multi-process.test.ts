import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import { checkInvariants } from '../../src/model/invariants.js';
import { costOf, DEFAULT_MODEL_PRICES } from '../../src/model/pricing.js';
import { validateState } from '../../src/model/schema.js';
import { OPEN_SESSIONS_KEY } from '../../src/model/sessions.js';
import { runWorkers } from '../helpers/child.js';
import { tempFilesIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const WORKERS = 4;
const EVENTS = 100; // per worker; every 10th is an error (see test/workers/metrics-recorder.mjs)

describe('AgentMetrics with several processes recording into one project', () => {
  it(`${WORKERS} processes × ${EVENTS} events: every counter exact, session numbers unique and consecutive`, async () => {
    const dir = tempDir();
    const names = Array.from({ length: WORKERS }, (_, i) => `w${i}`);
    const results = await runWorkers(
      'metrics-recorder.mjs',
      names.map((name) => [dir, EVENTS, name]),
    );
    const reported = results.map((result) => JSON.parse(result.stdout.at(-1) as string));

    const state = await new AgentMetrics({ projectName: 'multi-process', dir }).getState();
    expect(validateState(state)).toEqual([]);
    expect(checkInvariants(state)).toEqual([]);

    const total = WORKERS * EVENTS;
    const cost = costOf(DEFAULT_MODEL_PRICES['claude-haiku-4-5'] as never, 1000, 100);
    expect(state.events).toHaveLength(total);
    expect(new Set(state.events.map((e) => e.event_id)).size).toBe(total);
    expect(state.total_tokens).toBe(total * 1100);
    expect(state.total_cost_usd).toBeCloseTo(total * cost, 9);
    expect(state.total_duration_seconds).toBeCloseTo(total * 1.5, 9);

    // Sessions: one per process, numbered 1..N with no gap or duplicate, all ended.
    expect(state.total_sessions).toBe(WORKERS);
    expect(state[OPEN_SESSIONS_KEY]).toEqual([]);
    expect(state.sessions.map((s) => s.session_number).sort()).toEqual([1, 2, 3, 4]);
    expect(reported.map((r) => r.sessionNumber).sort()).toEqual([1, 2, 3, 4]);
    for (const session of state.sessions) {
      const name = reported.find((r) => r.sessionId === session.session_id)?.name;
      expect(session).toMatchObject({
        status: 'complete',
        total_tokens: EVENTS * 1100,
        agents_invoked: ['shared', `agent-${name}`],
        tickets_worked: [`T-${name}`],
      });
    }

    // The shared agent got the even events of every process, each own agent the odd ones.
    const shared = state.agents.shared;
    expect(shared).toMatchObject({
      total_invocations: total / 2,
      successful_invocations: total / 2,
      failed_invocations: 0,
      total_tokens: (total / 2) * 1100,
      commits_made: total / 2,
      lines_added: total,
      lines_removed: total / 2,
      success_rate: 1,
    });
    for (const name of names) {
      expect(state.agents[`agent-${name}`]).toMatchObject({
        total_invocations: EVENTS / 2,
        successful_invocations: EVENTS / 2 - EVENTS / 10,
        failed_invocations: EVENTS / 10,
        commits_made: EVENTS / 2,
        current_streak: 0,
        best_streak: 4,
        last_error: 'boom',
      });
    }
    expect(tempFilesIn(dir)).toEqual([]);
  });
});
