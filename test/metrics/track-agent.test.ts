import { describe, expect, it } from 'vitest';
import { InvalidInputError, MetricsError } from '../../src/errors.js';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import type { MetricsBackend } from '../../src/store/backend.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { metricsIn, steppingClock } from './helpers.js';

/** A backend whose writes fail (reads work), to test what a recording failure does. */
function failingWrites(inner: MetricsBackend): MetricsBackend {
  return {
    projectName: inner.projectName,
    load: () => inner.load(),
    update: () => Promise.reject(new MetricsError('E_IO', 'disk on fire')),
  };
}

describe('trackAgent', () => {
  it('records a success with the tracked tokens, artifacts and measured duration, and returns the result', async () => {
    const { metrics, errors } = metricsIn({ clock: steppingClock(2500) });
    const sessionId = await metrics.startSession({ type: 'initializer' });
    const result = await metrics.trackAgent(
      {
        agentName: 'coding',
        sessionId,
        ticketKey: 'AI-42',
        model: 'claude-haiku-4-5',
        artifacts: ['issue:AI-42'],
      },
      async (t) => {
        t.addTokens(1000, 100);
        t.addTokens(500);
        t.addArtifact('file:src/app.ts', 'commit:abc');
        return 'done';
      },
    );
    expect(result).toBe('done');
    const [event] = (await metrics.getState()).events;
    expect(event).toMatchObject({
      agent_name: 'coding',
      session_id: sessionId,
      status: 'success',
      input_tokens: 1500,
      output_tokens: 100,
      estimated_cost_usd: 0.002,
      artifacts: ['issue:AI-42', 'file:src/app.ts', 'commit:abc'],
      error_message: '',
      duration_seconds: 2.5,
    });
    expect((await metrics.getOpenSessions())[0]?.total_tokens).toBe(1600);
    expect(errors).toEqual([]);
  });

  it('re-throws the callback error and records the call as an error with its message', async () => {
    for (const strict of [false, true]) {
      const { metrics, errors } = metricsIn({ strict });
      const failure = new Error('tool crashed');
      await expect(
        metrics.trackAgent({ agentName: 'coding' }, (t) => {
          t.addTokens(10, 1);
          throw failure;
        }),
      ).rejects.toBe(failure);
      const profile = await metrics.getAgentProfile('coding');
      expect(profile).toMatchObject({ failed_invocations: 1, last_error: 'tool crashed', total_tokens: 11 });
      expect(errors).toEqual([]);
    }
  });

  it('records a zero duration, not an invalid event, when the wall clock is set back during the call', async () => {
    // 5 s, and 10 minutes: more than the skew a start given from elsewhere may have.
    for (const back of [-5000, -600_000]) {
      const { metrics, errors } = metricsIn({ clock: steppingClock(back) });
      await metrics.trackAgent({ agentName: 'coding' }, () => undefined);
      const [event] = (await metrics.getState()).events;
      expect(event?.duration_seconds).toBe(0);
      expect(event?.ended_at).toBe(event?.started_at);
      expect(errors).toEqual([]);
    }
  });

  it('records a non-Error throw and a status set by the agent', async () => {
    const { metrics } = metricsIn();
    await expect(
      metrics.trackAgent({ agentName: 'a' }, (t) => {
        t.setStatus('timeout');
        throw 'gave up';
      }),
    ).rejects.toBe('gave up');
    await metrics.trackAgent({ agentName: 'b' }, (t) => t.setStatus('blocked', 'waiting for review'));
    const events = (await metrics.getState()).events;
    expect(events.map((e) => [e.status, e.error_message])).toEqual([
      ['timeout', 'gave up'],
      ['blocked', 'waiting for review'],
    ]);
  });

  it('strict: false — a recording failure goes to onError and the result is still returned', async () => {
    const errors: MetricsError[] = [];
    const store = new MetricsStore({ projectName: 'demo', dir: tempDir() });
    const metrics = new AgentMetrics({ store: failingWrites(store), onError: (e) => errors.push(e) });
    expect(await metrics.trackAgent({ agentName: 'coding' }, () => 42)).toBe(42);
    expect(errors.map((e) => e.code)).toEqual(['E_IO']);
  });

  it('strict: true — a recording failure after a successful callback is thrown', async () => {
    const errors: MetricsError[] = [];
    const store = new MetricsStore({ projectName: 'demo', dir: tempDir() });
    const metrics = new AgentMetrics({
      store: failingWrites(store),
      strict: true,
      onError: (e) => errors.push(e),
    });
    await expect(metrics.trackAgent({ agentName: 'coding' }, () => 42)).rejects.toMatchObject({
      code: 'E_IO',
    });
    expect(errors).toEqual([]);
  });

  it('strict: true — when both the callback and the recording fail, the agent error wins; onError gets the other', async () => {
    const errors: MetricsError[] = [];
    const store = new MetricsStore({ projectName: 'demo', dir: tempDir() });
    const metrics = new AgentMetrics({
      store: failingWrites(store),
      strict: true,
      onError: (e) => errors.push(e),
    });
    const failure = new Error('agent failed');
    await expect(
      metrics.trackAgent({ agentName: 'coding' }, () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(errors.map((e) => e.code)).toEqual(['E_IO']);
  });

  it('invalid context: strict throws before running the work; non-strict runs it untracked and reports', async () => {
    let runs = 0;
    const work = () => {
      runs += 1;
      return 'ran';
    };
    const strict = metricsIn({ strict: true });
    await expect(strict.metrics.trackAgent({ agentName: '' }, work)).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    expect(runs).toBe(0);

    const lenient = metricsIn();
    expect(await lenient.metrics.trackAgent({ agentName: '' }, work)).toBe('ran');
    expect(runs).toBe(1);
    expect(lenient.errors.map((e) => e.message)).toEqual([
      'invalid input: agentName: expected a non-empty string',
    ]);
    expect((await lenient.metrics.getState()).events).toEqual([]);
  });

  it('a clock that returns no Date: E_INVALID_OPTIONS through onError, and the work’s own outcome, unless strict', async () => {
    const clock = (() => Date.now()) as unknown as () => Date;
    const { metrics, errors } = metricsIn({ clock });
    expect(await metrics.trackAgent({ agentName: 'coding' }, async () => 'agent result')).toBe(
      'agent result',
    );
    const failure = new Error('agent failure');
    await expect(
      metrics.trackAgent({ agentName: 'coding' }, async () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await metrics.recordEvent({ agentName: 'coding', status: 'success' })).toBeUndefined();
    expect(errors.map((error) => [error.code, error.message])).toEqual(
      Array(3).fill([
        'E_INVALID_OPTIONS',
        'invalid AgentMetrics options: clock: expected a function that returns a valid Date, got number',
      ]),
    );
    expect((await metrics.getState()).events).toEqual([]);

    // Read again at the end: a clock that goes bad during the work.
    let readings = 0;
    const failing = metricsIn({ clock: () => (++readings === 1 ? new Date() : new Date(Number.NaN)) });
    expect(await failing.metrics.trackAgent({ agentName: 'coding' }, () => 7)).toBe(7);
    expect(failing.errors.map((error) => error.message)).toEqual([
      'invalid AgentMetrics options: clock: expected a function that returns a valid Date, got an invalid Date',
    ]);

    let runs = 0;
    const strict = metricsIn({ clock, strict: true });
    await expect(strict.metrics.trackAgent({ agentName: 'coding' }, () => runs++)).rejects.toMatchObject({
      code: 'E_INVALID_OPTIONS',
    });
    expect(runs).toBe(0);
    await expect(
      strict.metrics.recordEvent({ agentName: 'coding', status: 'success' }),
    ).rejects.toMatchObject({
      code: 'E_INVALID_OPTIONS',
    });
  });

  it('negative tokens reported through the tracker are rejected like any invalid input', async () => {
    const { metrics, errors } = metricsIn();
    expect(await metrics.trackAgent({ agentName: 'coding' }, (t) => t.addTokens(-5))).toBeUndefined();
    expect(errors[0]?.message).toContain('inputTokens: expected a non-negative integer');
    expect((await metrics.getState()).events).toEqual([]);
  });
});
