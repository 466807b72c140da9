import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnChild } from './spawn.mjs';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'breakdown.mjs');

/** The breakdown of MetricsStore.update() at each state size, each in its own process. */
export async function runBreakdown({ dir, sizes, ops }) {
  const entries = [];
  for (const maxEvents of sizes) {
    const folder = join(dir, `breakdown-${maxEvents}`);
    mkdirSync(folder, { recursive: true });
    // Large states cost seconds per op: fewer of them say as much.
    const count = maxEvents > 5000 ? Math.max(3, Math.ceil(ops / 10)) : ops;
    entries.push(
      await spawnChild({ dir: folder, maxEvents, ops: count, action: 'breakdown' }, SCRIPT).result,
    );
    rmSync(folder, { recursive: true, force: true });
  }
  return entries;
}
