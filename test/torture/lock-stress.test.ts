import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startTortureWorker } from './spawn.js';
import { FULL, p50max, reportScenario, size, Violations } from './torture-mode.js';

/**
 * Lock stress (issue 4, part 5): one process per core plus two update() in a loop for a fixed
 * time, half of them blocking in flock for the lock and half polling it (`lockWait`), each holding the lock briefly with an exclusive marker file ('wx') inside the critical
 * section: two holders would collide on it. Short lock timeouts make some waiters give up: each
 * attempt must end with the lock or a LockAcquisitionError, and the counter must equal the
 * acknowledged updates. Then a holder is SIGKILLed while another process waits in a blocking
 * flock, and the time until that flock returns is measured (from just before the kill, on the
 * shared monotonic clock).
 *
 * Takeover times are printed, not asserted in the short mode (no wall-clock assertions in tests);
 * the full run (`npm run torture`) fails when the median exceeds TAKEOVER_BOUND_MS. The maximum
 * is reported: on a loaded machine it measures the scheduler.
 */

/**
 * A takeover has no poll interval to wait for, only signal delivery, process teardown, the kernel
 * waking the blocked flock and the thread pool handing its result to the waiter's event loop.
 */
const TAKEOVER_BOUND_MS = 25;

interface StressResult {
  acked: number;
  timeouts: number;
  twoHolders: number;
  errors: string[];
}

describe('torture: lock stress', () => {
  it(
    'never has two holders, and every waiter gets the lock or a LockAcquisitionError',
    async () => {
      const dir = tempDir('torture-lock-');
      const processes = availableParallelism() + 2;
      const seconds = size(3, 30);
      const workers = Array.from({ length: processes }, (_, i) =>
        startTortureWorker('torture-lock-child.mjs', [
          'stress',
          // Half the workers give up quickly, so timeouts happen under contention; half of each
          // poll for the lock as the CLI does (a poller is not a flock waiter: a lease holder
          // sees it only by the mark it writes into the lock file).
          JSON.stringify({
            dir,
            seconds,
            marker: join(dir, 'holder.marker'),
            lockTimeoutMs: i % 2 ? 20 : 5_000,
            lockWait: i % 4 < 2 ? 'block' : 'poll',
          }),
        ]),
      );
      const violations = new Violations();
      const totals: StressResult = { acked: 0, timeouts: 0, twoHolders: 0, errors: [] };
      let ackedByPollers = 0;
      for (const [i, worker] of workers.entries()) {
        const exit = await worker.exited;
        const line = worker.lines.find((text) => text.startsWith('result '));
        if (exit.code !== 0 || line === undefined) {
          violations.add(`worker ended ${exit.code ?? exit.signal}: ${exit.stderr}`);
          continue;
        }
        const result = JSON.parse(line.slice('result '.length)) as StressResult;
        totals.acked += result.acked;
        if (i % 4 >= 2) ackedByPollers += result.acked;
        totals.timeouts += result.timeouts;
        totals.twoHolders += result.twoHolders;
        totals.errors.push(...result.errors);
      }
      const state = await new MetricsStore({ projectName: 'torture', dir }).load();
      violations.check(totals.twoHolders === 0, () => `${totals.twoHolders} times two holders`);
      violations.check(totals.errors.length === 0, () => `other errors: ${totals.errors.slice(0, 3)}`);
      // Pollers rarely find the lock free between blocked back-to-back writers (README): a
      // figure in the short mode, whose few seconds may hold no such chance on a busy machine.
      if (FULL) violations.check(ackedByPollers > 0, () => 'the polling workers never got the lock in 30 s');
      violations.check(
        state.total_sessions === totals.acked,
        () => `counter ${state.total_sessions}, acknowledged ${totals.acked}`,
      );
      reportScenario('lock-stress', {
        processes,
        seconds,
        locked_updates: totals.acked,
        by_pollers: ackedByPollers,
        lock_timeouts: totals.timeouts,
        two_holders: totals.twoHolders,
        other_errors: totals.errors.length,
        counter_exact: String(state.total_sessions === totals.acked),
        violations: violations.list.length,
      });
      expect(violations.first).toEqual([]);
      expect(totals.acked).toBeGreaterThan(0);
    },
    size(60_000, 300_000),
  );

  it(
    "takes over a SIGKILLed holder's lock",
    async () => {
      const violations = new Violations();
      const takeovers: number[] = [];
      const samples = size(5, 100);
      for (let i = 0; i < samples; i++) {
        const dir = tempDir('torture-takeover-');
        const holder = startTortureWorker('torture-lock-child.mjs', ['hold', JSON.stringify({ dir })]);
        if ((await holder.line('holding')) === undefined) {
          violations.add(`holder ${i} never held the lock: ${(await holder.exited).stderr}`);
          continue;
        }
        const waiter = startTortureWorker('lock-waiter.mjs', [dir, '10000']);
        if ((await waiter.line('waiting')) === undefined) {
          violations.add(`waiter ${i} never started a blocking wait: ${(await waiter.exited).stderr}`);
          holder.process.kill('SIGKILL');
          continue;
        }
        const killedAt = process.hrtime.bigint();
        holder.process.kill('SIGKILL');
        const acquired = await waiter.line('acquired ');
        const exit = await waiter.exited;
        await holder.exited;
        if (acquired === undefined || exit.code !== 0) {
          violations.add(`waiter ${i} did not take over (${exit.code}): ${exit.stderr}`);
          continue;
        }
        takeovers.push(Number(BigInt(acquired.split(' ')[1] as string) - killedAt) / 1e6);
      }
      const { p50, max } = p50max(takeovers);
      if (FULL)
        violations.check(
          p50 <= TAKEOVER_BOUND_MS,
          () => `median takeover ${p50.toFixed(1)} ms, bound ${TAKEOVER_BOUND_MS} ms`,
        );
      reportScenario('lock-takeover', {
        kills: takeovers.length,
        takeover_p50_ms: p50.toFixed(1),
        takeover_max_ms: max.toFixed(1),
        median_bound_ms: TAKEOVER_BOUND_MS,
        violations: violations.list.length,
      });
      expect(violations.first).toEqual([]);
      expect(takeovers).toHaveLength(samples);
    },
    size(60_000, 300_000),
  );
});
