import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors.js';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import { validateState } from '../../src/model/schema.js';
import { OPEN_SESSIONS_KEY } from '../../src/model/sessions.js';
import type { MetricsBackend, StateMutator } from '../../src/store/backend.js';
import { MemoryBackend } from '../../src/store/memory-backend.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { metricsIn, T0 } from './helpers.js';

describe('AgentMetrics session loop', () => {
  it('records a session with events into the file, with totals everywhere', async () => {
    const { metrics, errors } = metricsIn();
    const sessionId = await metrics.startSession({ type: 'initializer', startedAt: T0 });
    const event = await metrics.recordEvent({
      agentName: 'coding',
      sessionId,
      ticketKey: 'AI-42',
      model: 'claude-sonnet-4-5',
      status: 'success',
      inputTokens: 1200,
      outputTokens: 800,
      startedAt: '2026-03-01T10:00:00Z',
      endedAt: '2026-03-01T10:00:30.500Z',
      artifacts: ['commit:abc123', 'pr:#42', 'lines:+10/-2'],
    });
    expect(event).toMatchObject({
      agent_name: 'coding',
      session_id: sessionId,
      duration_seconds: 30.5,
      total_tokens: 2000,
      started_at: '2026-03-01T10:00:00.000Z',
      ended_at: '2026-03-01T10:00:30.500Z',
    });
    expect(event?.estimated_cost_usd).toBeCloseTo(1200 * 0.000003 + 800 * 0.000015, 12);
    const summary = await metrics.endSession(sessionId, 'complete', { endedAt: '2026-03-01T11:00:00Z' });
    expect(summary).toMatchObject({
      session_id: sessionId,
      session_number: 1,
      session_type: 'initializer',
      started_at: T0.toISOString(),
      ended_at: '2026-03-01T11:00:00.000Z',
      status: 'complete',
      agents_invoked: ['coding'],
      total_tokens: 2000,
      tickets_worked: ['AI-42'],
    });

    const state = await metrics.getState();
    expect(validateState(state)).toEqual([]);
    expect(state.total_sessions).toBe(1);
    expect(state.total_tokens).toBe(2000);
    expect(state.events.map((e) => e.event_id)).toEqual([event?.event_id]);
    expect(state.sessions).toHaveLength(1);
    expect(state[OPEN_SESSIONS_KEY]).toEqual([]);
    const profile = await metrics.getAgentProfile('coding');
    expect(profile).toMatchObject({
      total_invocations: 1,
      successful_invocations: 1,
      commits_made: 1,
      prs_created: 1,
      lines_added: 10,
      lines_removed: 2,
      current_streak: 1,
      recent_events: [event?.event_id],
      last_active: '2026-03-01T10:00:30.500Z',
      level: 1,
      xp: 0,
    });
    expect(await metrics.getAgentProfile('nobody')).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('persists a session from its start, before it ends', async () => {
    const { metrics, dir } = metricsIn();
    const sessionId = await metrics.startSession({ type: 'continuation' });
    const reader = new MetricsStore({ projectName: 'demo', dir });
    const state = await reader.load();
    expect(state[OPEN_SESSIONS_KEY]).toEqual([
      expect.objectContaining({ session_id: sessionId, session_number: 1, session_type: 'continuation' }),
    ]);
    expect(state.total_sessions).toBe(1);
    expect(await metrics.getOpenSessions()).toHaveLength(1);
  });

  it('rejects invalid event input naming the field, and writes nothing', async () => {
    const { metrics, errors } = metricsIn({ strict: true });
    const bad = metrics.recordEvent({ agentName: 'coding', status: 'success', inputTokens: -1 });
    await expect(bad).rejects.toBeInstanceOf(InvalidInputError);
    await expect(bad).rejects.toThrow('inputTokens: expected a non-negative integer');
    expect((await metrics.getState()).events).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('rejects names of spaces only (agent, session) as input errors, and writes nothing', async () => {
    const { metrics } = metricsIn({ strict: true });
    await expect(metrics.recordEvent({ agentName: ' \t', status: 'success' })).rejects.toThrow(
      'agentName: expected a name, not only spaces',
    );
    await expect(metrics.startSession({ sessionId: '  ' })).rejects.toThrow(
      'sessionId: expected a name, not only spaces',
    );
    await expect(metrics.endSession(' ')).rejects.toThrow('sessionId: expected a name, not only spaces');
    const state = await metrics.getState();
    expect(state.events).toEqual([]);
    expect(state.total_sessions).toBe(0);
  });

  it('rejects times outside years 0001-9999 as input errors naming the field, and writes nothing', async () => {
    const year10000 = new Date(Date.UTC(10000, 0, 1));
    let now = T0;
    const { metrics, dir } = metricsIn({ strict: true, clock: () => now });
    const id = await metrics.startSession();
    const paths = (call: Promise<unknown>) =>
      call.then(
        () => [],
        (error: unknown) => {
          expect(error).toBeInstanceOf(InvalidInputError);
          return (error as InvalidInputError).issues.map((issue) => issue.path);
        },
      );
    expect(
      await paths(
        metrics.recordEvent({ agentName: 'a', status: 'success', startedAt: T0, durationSeconds: 1e12 }),
      ),
    ).toEqual(['durationSeconds']);
    expect(await paths(metrics.startSession({ startedAt: year10000 }))).toEqual(['startedAt']);
    expect(await paths(metrics.endSession(id, 'complete', { endedAt: year10000 }))).toEqual(['endedAt']);
    now = year10000; // defaults come from the clock
    expect(await paths(metrics.startSession())).toEqual(['startedAt']);
    expect(await paths(metrics.endSession(id))).toEqual(['endedAt']);
    // trackAgent reads both its times from the clock.
    expect(await paths(metrics.trackAgent({ agentName: 'a' }, () => 1))).toEqual(['startedAt', 'endedAt']);
    const state = await new MetricsStore({ projectName: 'demo', dir }).load();
    expect([state.events, state.total_sessions, state.sessions]).toEqual([[], 1, []]);
  });

  it('a malformed sessions_in_progress is moved aside and reported, and sessions go on', async () => {
    const { metrics, errors, dir } = metricsIn({ strict: true, clock: () => T0 });
    const store = new MetricsStore({ projectName: 'demo', dir, durability: 'none' });
    await store.update((state) => {
      state[OPEN_SESSIONS_KEY] = { not: 'a list' };
    });
    const id = await metrics.startSession();
    const key = 'sessions_in_progress_corrupt_20260301T100000.000Z';
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      [
        'E_INVALID_STATE',
        `invalid sessions in progress, moved aside to ${key} (the sessions in progress start over empty): sessions_in_progress: Invalid type: Expected Array but received Object`,
      ],
    ]);
    let state = await store.load();
    expect(state[key]).toEqual({ not: 'a list' });
    expect((await metrics.getOpenSessions()).map((s) => s.session_id)).toEqual([id]);

    // endSession repairs it too, and the call itself succeeds (then: unknown session).
    await store.update((draft) => {
      draft[OPEN_SESSIONS_KEY] = 'junk';
    });
    await expect(metrics.endSession(id)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(errors).toHaveLength(1); // the failed update wrote nothing, so no repair to report
    const other = await metrics.startSession();
    expect(await metrics.endSession(other)).toMatchObject({ session_id: other, status: 'complete' });
    state = await store.load();
    expect(state[`${key}-2`]).toBe('junk');
    expect(state[OPEN_SESSIONS_KEY]).toEqual([]);
    expect(errors.map((e) => e.code)).toEqual(['E_INVALID_STATE', 'E_INVALID_STATE']);
  });

  it('ending a session twice is E_CONFLICT while it is kept, E_NOT_FOUND saying why once evicted', async () => {
    // No id is kept beyond the capped `sessions`: a bounded file cannot remember every ended id.
    const { metrics } = metricsIn({ strict: true, maxSessions: 1 });
    const first = await metrics.startSession();
    await metrics.endSession(first);
    await expect(metrics.endSession(first)).rejects.toMatchObject({ code: 'E_CONFLICT' });
    await metrics.endSession(await metrics.startSession()); // evicts `first` from sessions
    await expect(metrics.endSession(first)).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
      message: `session ${first} is not in progress: an unknown id, or one that ended and is no longer among the kept sessions (maxSessions)`,
    });
  });

  it('ranks the leaderboard by successes, then success rate, then fewest tokens per call, then name', async () => {
    const { metrics } = metricsIn();
    const record = (agentName: string, status: 'success' | 'error', inputTokens = 0) =>
      metrics.recordEvent({ agentName, status, inputTokens });
    await record('coding', 'success');
    await record('coding', 'success');
    await record('linear', 'success', 10);
    await record('github', 'success', 10);
    await record('github', 'error');
    await record('beta', 'success', 5);
    await record('alpha', 'success', 5);
    const board = await metrics.getLeaderboard();
    expect(board.map((p) => p.agent_name)).toEqual(['coding', 'alpha', 'beta', 'linear', 'github']);
  });
});

describe('AgentMetrics writes through the backend', () => {
  /** A backend in memory that logs which of its writes were called. */
  function loggingBackend(withCommit: boolean) {
    const inner = new MemoryBackend('logged');
    const calls: string[] = [];
    const backend: MetricsBackend = {
      projectName: inner.projectName,
      load: () => inner.load(),
      update: (mutate) => {
        calls.push('update');
        return inner.update(mutate);
      },
      ...(withCommit && {
        commit: (mutate: StateMutator) => {
          calls.push('commit');
          return inner.commit(mutate);
        },
      }),
    };
    return { backend, calls };
  }

  const record = async (metrics: AgentMetrics) => {
    const sessionId = await metrics.startSession();
    await metrics.recordEvent({ agentName: 'coding', status: 'success', sessionId });
    await metrics.endSession(sessionId);
    return (await metrics.getState()).events.length;
  };

  it('uses commit when the backend has it (the state update() returns goes unread)', async () => {
    const { backend, calls } = loggingBackend(true);
    expect(await record(new AgentMetrics({ store: backend, strict: true }))).toBe(1);
    expect(calls).toEqual(['commit', 'commit', 'commit']);
  });

  it('uses update on a backend without commit', async () => {
    const { backend, calls } = loggingBackend(false);
    expect(await record(new AgentMetrics({ store: backend, strict: true }))).toBe(1);
    expect(calls).toEqual(['update', 'update', 'update']);
  });
});
