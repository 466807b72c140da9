import type { MetricsError } from '../../src/errors.js';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import type { AgentMetricsOptions } from '../../src/metrics/options.js';
import { MemoryBackend } from '../../src/store/memory-backend.js';
import type { MetricsStoreOptions } from '../../src/store/options.js';
import { tempDir } from '../helpers/temp-dir.js';

export const T0 = new Date('2026-03-01T10:00:00.000Z');

/** A clock that starts at T0 and moves `stepMs` forward on every reading. */
export function steppingClock(stepMs = 1000, start = T0): () => Date {
  let now = start.getTime() - stepMs;
  return () => {
    now += stepMs;
    return new Date(now);
  };
}

/** AgentMetrics on a JSON store in a temp folder (no fsync: these tests are about logic), collecting errors. */
export function metricsIn(
  options: Partial<MetricsStoreOptions> & Omit<AgentMetricsOptions, 'projectName' | 'store'> = {},
) {
  const dir = options.dir ?? tempDir();
  const errors: MetricsError[] = [];
  const metrics = new AgentMetrics({
    projectName: 'demo',
    durability: 'none',
    onError: (error) => errors.push(error),
    ...options,
    dir,
  });
  return { metrics, errors, dir };
}

/**
 * A backend in memory (a mutator that throws leaves the state as it was): shows that AgentMetrics
 * depends on the MetricsBackend interface alone, and keeps property tests fast.
 */
export function memoryBackend(projectName = 'memory'): MemoryBackend {
  return new MemoryBackend(projectName);
}
