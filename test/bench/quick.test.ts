import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp-dir.js';

const run = promisify(execFile);
const BENCH = fileURLToPath(new URL('../../bench/run.mjs', import.meta.url));

interface BenchResult {
  scenario: string;
  store: string;
  label: string;
  ops: number;
  lost: number | null;
  failedOps: number;
  errors: Record<string, number>;
}

// The stores that promise no lost update; lowdb's losses are what the benchmark reports about it.
const LOSSLESS = ['ours-record', 'ours-update', 'wfa-lockfile', 'sqlite', 'append-limit'];
const STORES = [...LOSSLESS, 'lowdb'];

// Smoke test of `npm run bench -- --quick` (the CI mode): every store runs every scenario, and the
// stores that lock lose nothing even with 8 processes and 64 concurrent callers. Timings are printed
// by the benchmark, never asserted.
describe('bench --quick', () => {
  it('gives one line per store and scenario, and no lost or failed update for the locking stores', async () => {
    const dir = tempDir('agent-metrics-bench-test-');
    const out = join(dir, 'results.json');
    const { stdout } = await run(process.execPath, [BENCH, '--quick', `--dir=${dir}`, `--out=${out}`], {
      maxBuffer: 16 * 2 ** 20,
    });
    const { results } = JSON.parse(readFileSync(out, 'utf8')) as { results: BenchResult[] };

    for (const scenario of ['seq', 'multi', 'callers']) {
      for (const store of STORES) {
        const result = results.find((r) => r.scenario === scenario && r.store === store);
        expect(result, `${scenario} ${store}`).toBeDefined();
        expect(stdout).toContain(`| ${result?.label} |`);
      }
    }
    for (const store of ['ours-record', 'wfa-lockfile']) {
      expect(results.filter((r) => r.scenario === 'growth' && r.store === store)).toHaveLength(2);
    }
    for (const result of results.filter((r) => LOSSLESS.includes(r.store))) {
      const where = `${result.scenario} ${result.store}`;
      expect(result.ops, where).toBeGreaterThan(0);
      expect({ where, lost: result.lost, failed: result.failedOps, errors: result.errors }).toEqual({
        where,
        lost: 0,
        failed: 0,
        errors: {},
      });
    }
    expect(stdout).toContain('| phase of MetricsStore.update() |');
  }, 300_000);
});
