#!/usr/bin/env node
// The reliability torture suite: `npm run torture` (full) or `npm run torture -- --short` (the size
// `npm test` and CI run). The scenarios are the vitest files in test/torture/ (their workers import
// the built package, so run `npm run build` first; the npm script does). This runner sizes them
// (TORTURE_MODE), runs them one file at a time so they do not skew each other's figures, and
// prints one line of figures per scenario. It exits non-zero on any violation.
//
//   node torture/run.mjs [--short] [--seed <n>]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const SCENARIOS = [
  'crash-loop',
  'fault-injection',
  'power-cut',
  'fuzz',
  'lock-stress',
  'lock-takeover',
  'concurrency-totals',
];

const { values } = parseArgs({ options: { short: { type: 'boolean' }, seed: { type: 'string' } } });
const mode = values.short ? 'short' : 'full';
if (!existsSync(join(ROOT, 'dist', 'index.js'))) {
  console.error('torture: dist/ is missing; run `npm run build` first (or use `npm run torture`).');
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), 'agent-metrics-torture-'));
const report = join(work, 'report.txt');
const log = join(work, 'vitest.log');
const env = { ...process.env, TORTURE_MODE: mode, TORTURE_REPORT: report };
if (values.seed !== undefined) env.TORTURE_SEED = values.seed;

console.log(`torture: ${mode} mode, node ${process.version}`);
const started = Date.now();
const vitest = spawn(
  process.execPath,
  [
    join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'),
    'run',
    'test/torture',
    '--no-file-parallelism',
    '--coverage.enabled=false',
    '--reporter=dot',
  ],
  { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
);
let output = '';
let partial = '';
const figureLine = new RegExp(`^(${SCENARIOS.join('|')}): `);
vitest.stdout.on('data', (chunk) => {
  output += chunk;
  // Show each scenario's figures as soon as it finishes (the full run takes a while).
  const lines = (partial + chunk).split('\n');
  partial = lines.pop() ?? '';
  for (const line of lines) if (figureLine.test(line)) console.log(`  done: ${line}`);
});
vitest.stderr.on('data', (chunk) => {
  output += chunk;
});
const code = await new Promise((resolve) => vitest.on('close', (exitCode) => resolve(exitCode ?? 1)));
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log('');

const lines = existsSync(report) ? readFileSync(report, 'utf8').split('\n').filter(Boolean) : [];
const failures = [];
for (const scenario of SCENARIOS) {
  const line = lines.find((text) => text.startsWith(`${scenario}: `));
  if (line === undefined) {
    failures.push(`${scenario}: no figures (the scenario did not finish)`);
    continue;
  }
  console.log(line);
  if (!/ violations=0\b/.test(line)) failures.push(line);
}
if (code !== 0 || failures.length > 0) {
  console.log(output);
  console.log(
    `torture: FAILED after ${seconds} s (${failures.length} scenario(s) with violations; vitest exit ${code})`,
  );
  writeFileSync(log, output);
  console.log(`torture: vitest output kept in ${log}`);
  process.exit(1);
}
console.log(`torture: ${mode} mode passed in ${seconds} s`);
rmSync(work, { recursive: true, force: true });
