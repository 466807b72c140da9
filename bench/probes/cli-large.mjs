// Wall time and peak RSS of the CLI's commands on a large project: `--events` events kept (the
// benchmark's prefilled state, ~31 MB at 50,000), each command run `--runs` times (median, and
// the largest peak RSS). Run `npm run build` first; `DIST=<another build's dist folder>` measures
// another build (an A/B run: run both, alternately).
//   node bench/probes/cli-large.mjs [--events=50000] [--runs=3]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { prefilledState } from '../workload.mjs';

const arg = (name, fallback) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const events = Number(arg('events', 50_000));
const runs = Number(arg('runs', 3));
const dist = resolve(process.env.DIST ?? new URL('../../dist', import.meta.url).pathname);
const bin = join(dist, 'cli', 'bin.js');
const { MetricsStore } = await import(pathToFileURL(join(dist, 'index.js')).href);

// Each command reports its own peak RSS on exit (stderr's last line).
const REPORT_RSS =
  'data:text/javascript,process.on("exit",()=>process.stderr.write("\\nmaxrss "+process.resourceUsage().maxRSS+"\\n"))';

const dir = mkdtempSync(join(tmpdir(), 'cli-large-'));
const outDir = mkdtempSync(join(tmpdir(), 'cli-large-out-'));
const out = join(outDir, 'events.csv');
const commands = {
  show: ['show'],
  'show --json': ['show', '--json'],
  'show --agent coding': ['show', '--agent', 'coding'],
  stats: ['stats'],
  verify: ['verify', '--max-events', String(events)],
  'export --format csv': ['export', '--format', 'csv', '--out', out],
  'record --agent cli': ['record', '--agent', 'cli'],
  'record --json - (20)': ['record', '--json', '-'],
};
const STDIN = {
  'record --json - (20)': Array.from(
    { length: 20 },
    (_, i) => `${JSON.stringify({ agentName: 'cli', status: 'success', inputTokens: i })}\n`,
  ).join(''),
};

function runOnce(args, input) {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, ['--import', REPORT_RSS, bin, ...args, '--dir', dir], {
    stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'],
    input,
    encoding: 'utf8',
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0 && result.status !== 1) throw new Error(`${args.join(' ')}: ${result.stderr}`);
  const rssKb = Number(/maxrss (\d+)/.exec(result.stderr)?.[1]);
  return { ms, rssMb: rssKb / 1024 };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

try {
  const store = new MetricsStore({ projectName: 'bench', dir, maxEvents: events });
  await store.save(prefilledState(events));
  await store.close();
  console.log(`${dist}: ${events} events kept, ${runs} run(s) each`);
  for (const [name, args] of Object.entries(commands)) {
    const results = Array.from({ length: runs }, () => runOnce(args, STDIN[name]));
    const ms = median(results.map((result) => result.ms));
    const rss = Math.max(...results.map((result) => result.rssMb));
    console.log(`  ${name.padEnd(22)} ${ms.toFixed(0).padStart(6)} ms  peak RSS ${rss.toFixed(0)} MB`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  rmSync(outDir, { recursive: true, force: true });
}
