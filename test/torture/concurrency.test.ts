import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startTortureWorker } from './spawn.js';
import { reportScenario, size, Violations } from './torture-mode.js';

/**
 * Concurrency totals (issue 4, part 6): N processes each make M store updates and then record M
 * events through the domain API (AgentMetrics.recordEvent, strict); every counter must be exact.
 */

describe('torture: concurrency totals', () => {
  it(
    'counts N × M updates and N × M recorded events exactly',
    async () => {
      const dir = tempDir('torture-totals-');
      const processes = availableParallelism() + 2;
      const perProcess = size(25, 200);
      const workers = Array.from({ length: processes }, (_, i) =>
        startTortureWorker('torture-lock-child.mjs', [
          'count',
          JSON.stringify({ dir, updates: perProcess, events: perProcess, name: `agent-${i}` }),
        ]),
      );
      const violations = new Violations();
      for (const worker of workers) {
        const exit = await worker.exited;
        violations.check(exit.code === 0, () => `worker ended ${exit.code ?? exit.signal}: ${exit.stderr}`);
      }
      const state = await new MetricsStore({ projectName: 'torture', dir }).load();
      const expected = processes * perProcess;
      const updates = state.torture_updates as number;
      const invocations = Object.values(state.agents).reduce(
        (sum, agent) => sum + agent.total_invocations,
        0,
      );
      violations.check(updates === expected, () => `updates: ${updates} of ${expected}`);
      violations.check(invocations === expected, () => `recorded events: ${invocations} of ${expected}`);
      violations.check(state.total_tokens === expected * 3, () => `total_tokens ${state.total_tokens}`);
      for (let i = 0; i < processes; i++) {
        const agent = state.agents[`agent-${i}`];
        violations.check(
          agent?.total_invocations === perProcess,
          () => `agent-${i}: ${agent?.total_invocations}`,
        );
      }
      reportScenario('concurrency-totals', {
        processes,
        per_process: perProcess,
        updates: `${updates}/${expected}`,
        record_events: `${invocations}/${expected}`,
        lost: expected - updates + (expected - invocations),
        violations: violations.list.length,
      });
      expect(violations.first).toEqual([]);
    },
    size(60_000, 600_000),
  );
});
