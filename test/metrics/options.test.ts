import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import type { AgentMetricsOptions } from '../../src/metrics/options.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { memoryBackend, metricsIn } from './helpers.js';

function optionsError(options: unknown): string {
  try {
    new AgentMetrics(options as AgentMetricsOptions);
  } catch (error) {
    expect(error).toMatchObject({ code: 'E_INVALID_OPTIONS' });
    return (error as Error).message;
  }
  throw new Error('expected E_INVALID_OPTIONS');
}

describe('AgentMetrics options', () => {
  it('works on any MetricsBackend passed as store', async () => {
    const backend = memoryBackend();
    const metrics = new AgentMetrics({ store: backend, strict: true });
    expect(metrics.backend).toBe(backend);
    expect(metrics.projectName).toBe('memory');
    const id = await metrics.startSession({ type: 'initializer' });
    await metrics.recordEvent({ agentName: 'coding', status: 'success', sessionId: id, inputTokens: 5 });
    await metrics.endSession(id, 'complete');
    const state = await backend.load();
    expect(state).toMatchObject({ total_sessions: 1, total_tokens: 5 });
    expect(state.sessions[0]?.total_tokens).toBe(5);
  });

  it('builds a MetricsStore from store options, and does not touch the caller object', async () => {
    const dir = tempDir();
    const options = Object.freeze({ projectName: 'frozen', dir, strict: true });
    const metrics = new AgentMetrics(options);
    expect(metrics.backend).toBeInstanceOf(MetricsStore);
    expect((metrics.backend as MetricsStore).dir).toBe(dir);
    await metrics.startSession();
    expect(options).toEqual({ projectName: 'frozen', dir, strict: true });
  });

  it('merges price overrides over the default table and honours unknownModelPrice', async () => {
    const { metrics } = metricsIn({
      prices: {
        'claude-haiku-4-5': { inputPer1k: 1, outputPer1k: 0 },
        'local-llm': { inputPer1k: 0, outputPer1k: 0 },
      },
      unknownModelPrice: { inputPer1k: 2, outputPer1k: 0 },
    });
    const cost = async (model: string) =>
      (await metrics.recordEvent({ agentName: 'a', status: 'success', model, inputTokens: 1000 }))
        ?.estimated_cost_usd;
    expect(await cost('claude-haiku-4-5')).toBe(1);
    expect(await cost('local-llm')).toBe(0);
    expect(await cost('claude-sonnet-4-5')).toBe(0.003);
    expect(await cost('mystery')).toBe(2);
  });

  it('drops the oldest sessions in progress beyond maxOpenSessions', async () => {
    const { metrics } = metricsIn({ maxOpenSessions: 2 });
    const ids = [await metrics.startSession(), await metrics.startSession(), await metrics.startSession()];
    expect((await metrics.getOpenSessions()).map((s) => s.session_id)).toEqual(ids.slice(1));
  });

  it('rejects bad options with E_INVALID_OPTIONS naming the option', () => {
    expect(optionsError({ projectName: 'p', strict: 'yes' })).toContain('strict');
    expect(optionsError({ projectName: 'p', maxOpenSessions: 0 })).toContain('maxOpenSessions');
    expect(optionsError({ projectName: 'p', prices: { x: { inputPer1k: -1, outputPer1k: 0 } } })).toContain(
      'prices.x.inputPer1k',
    );
    expect(optionsError({ store: { nope: true } })).toContain('store');
    expect(optionsError({ store: memoryBackend(), dir: tempDir(), lockTimeoutMs: 5 })).toContain(
      'store: a backend given as store takes no MetricsStore options (got dir, lockTimeoutMs)',
    );
    expect(optionsError({ dir: tempDir() })).toContain('projectName');
  });

  it('rejects a misspelt or unknown option instead of ignoring it', async () => {
    const dir = tempDir();
    expect(optionsError({ projectName: 'p', dir, stict: true })).toBe(
      'invalid AgentMetrics options: stict: unknown option',
    );
    expect(optionsError({ store: memoryBackend(), onErorr: () => undefined, maxEvent: 5 })).toBe(
      'invalid AgentMetrics options: onErorr: unknown option; maxEvent: unknown option',
    );
    expect(optionsError(null)).toBe('invalid AgentMetrics options: (root): expected an object');
    // Every MetricsStore option is accepted and reaches the store.
    const metrics = new AgentMetrics({
      projectName: 'p',
      dir,
      maxEvents: 3,
      maxSessions: 2,
      lockTimeoutMs: 100,
      fileMode: 0o640,
      durability: 'none',
      onRecover: () => undefined,
      fileSystem: undefined,
      strict: true,
    });
    expect((metrics.backend as MetricsStore).dir).toBe(dir);
    // An option set to undefined counts as not given, also next to a backend.
    expect(new AgentMetrics({ store: memoryBackend(), dir: undefined } as never).projectName).toBe('memory');
  });
});
