// Start-up cost of the CLI: median wall time of `node dist/cli/bin.js record …` (one event,
// fsynced) against `node -e 0`, over RUNS runs each, interleaved so both see the same machine load.
// Usage: npm run build && node bench/cli-startup.mjs [runs]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNS = Number(process.argv[2] ?? 20);
const BIN = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'agent-metrics-bench-'));

const commands = {
  'node -e 0': ['-e', '0'],
  'agent-metrics --version': [BIN, '--version'],
  'agent-metrics record': [
    BIN,
    'record',
    '--dir',
    dir,
    '--agent',
    'coding',
    '--input-tokens',
    '1200',
    '--output-tokens',
    '800',
    '--model',
    'claude-sonnet-4-5',
    '--ticket',
    'AI-42',
    '--artifact',
    'commit:abc123',
  ],
};

function timeOnce(args) {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed: ${result.stderr}`);
  return ms;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

try {
  const times = Object.fromEntries(Object.keys(commands).map((name) => [name, []]));
  for (const args of Object.values(commands)) timeOnce(args); // warm the file cache
  for (let run = 0; run < RUNS; run++) {
    for (const [name, args] of Object.entries(commands)) times[name].push(timeOnce(args));
  }
  const baseline = median(times['node -e 0']);
  console.log(`node ${process.version}, ${RUNS} runs each, median wall time:`);
  for (const [name, values] of Object.entries(times)) {
    const m = median(values);
    const extra = name === 'node -e 0' ? '' : `  (+${(m - baseline).toFixed(1)} ms over node -e 0)`;
    console.log(`  ${name.padEnd(26)} ${m.toFixed(1).padStart(7)} ms${extra}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
