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
    // As many ops at every size: an update's cost no longer grows with the events kept.
    entries.push(await spawnChild({ dir: folder, maxEvents, ops, action: 'breakdown' }, SCRIPT).result);
    rmSync(folder, { recursive: true, force: true });
  }
  return entries;
}
