import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import type { EventInput } from '../../src/metrics/inputs.js';
import { checkInvariants } from '../../src/model/invariants.js';
import { validateState } from '../../src/model/schema.js';
import { EVENT_STATUSES } from '../../src/model/types.js';
import { tempDir } from '../helpers/temp-dir.js';
import { memoryBackend, T0 } from './helpers.js';

const input = fc.record(
  {
    agentName: fc.constantFrom('coding', 'github', 'linear'),
    status: fc.constantFrom(...EVENT_STATUSES),
    model: fc.constantFrom('claude-sonnet-4-5', 'claude-haiku-4-5-20251001', 'unknown-model'),
    inputTokens: fc.nat({ max: 50_000 }),
    outputTokens: fc.nat({ max: 5_000 }),
    durationSeconds: fc.double({ min: 0, max: 900, noNaN: true }),
    artifacts: fc.array(fc.constantFrom('commit:a', 'pr:#1', 'lines:+3/-2', 'x:y'), { maxLength: 3 }),
    inSession: fc.boolean(),
  },
  { requiredKeys: ['agentName', 'status', 'inSession'] },
);

describe('AgentMetrics end to end (property-based, in-memory backend)', () => {
  it('whatever events arrive, root totals, profiles and the session agree with what was returned', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(input, { maxLength: 25 }), async (inputs) => {
        const backend = memoryBackend();
        const metrics = new AgentMetrics({ store: backend, strict: true, clock: () => T0 });
        const sessionId = await metrics.startSession({ type: 'initializer' });
        const stored = [];
        for (const { inSession, ...rest } of inputs) {
          const event = await metrics.recordEvent({
            ...rest,
            sessionId: inSession ? sessionId : '',
          } as EventInput);
          stored.push(event as NonNullable<typeof event>);
        }
        const summary = await metrics.endSession(sessionId, 'complete');
        const state = await metrics.getState();

        expect(validateState(state)).toEqual([]);
        expect(checkInvariants(state)).toEqual([]);
        expect(state.events).toEqual(stored);
        const tokens = stored.reduce((t, e) => t + e.total_tokens, 0);
        expect(state.total_tokens).toBe(tokens);
        const ours = stored.filter((e) => e.session_id === sessionId);
        expect(summary?.total_tokens).toBe(ours.reduce((t, e) => t + e.total_tokens, 0));
        expect(summary?.agents_invoked).toEqual([...new Set(ours.map((e) => e.agent_name))]);
        for (const event of stored) {
          expect(event.total_tokens).toBe(event.input_tokens + event.output_tokens);
          // Timestamps have millisecond precision; the duration is kept exactly as given.
          const span = Date.parse(event.ended_at) - Date.parse(event.started_at);
          expect(Math.abs(span - event.duration_seconds * 1000)).toBeLessThanOrEqual(1);
        }
        const board = await metrics.getLeaderboard();
        expect(board.reduce((t, p) => t + p.total_invocations, 0)).toBe(stored.length);
      }),
      { numRuns: 100 },
    );
  });

  it('loses nothing with 50 concurrent recordings from one process into one folder', async () => {
    const metrics = new AgentMetrics({ projectName: 'p', dir: tempDir(), durability: 'none', strict: true });
    const sessionId = await metrics.startSession();
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        metrics.recordEvent({ agentName: `a${i % 3}`, status: 'success', sessionId, inputTokens: 1 }),
      ),
    );
    const [open] = await metrics.getOpenSessions();
    expect(open?.total_tokens).toBe(50);
    expect((await metrics.getState()).events).toHaveLength(50);
  });
});
