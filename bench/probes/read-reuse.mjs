// Time of repeated lock-free reads (load(), getLeaderboard()) by a store instance that has not
// written, then of its first write, on the benchmark's prefilled state (`--events`, 50,000 by
// default: a ~31 MB file). The first load sees a file written just now, whose times have not
// settled: it is not kept. Run `npm run build` first; `DIST=<another build's dist folder>`
// measures another build.
//   node bench/probes/read-reuse.mjs [--events=50000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { eventInput, prefilledState } from '../workload.mjs';

const arg = (name, fallback) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const events = Number(arg('events', 50_000));
const dist = resolve(process.env.DIST ?? new URL('../../dist', import.meta.url).pathname);
const { AgentMetrics, MetricsStore } = await import(pathToFileURL(join(dist, 'index.js')).href);

const dir = mkdtempSync(join(tmpdir(), 'read-reuse-'));
try {
  const writer = new MetricsStore({ projectName: 'bench', dir, maxEvents: events });
  await writer.save(prefilledState(events));
  await writer.close();

  const store = new MetricsStore({ projectName: 'bench', dir, maxEvents: events, durability: 'none' });
  const metrics = new AgentMetrics({ store, strict: true });
  const timed = async (label, action) => {
    const started = performance.now();
    await action();
    console.log(`  ${label.padEnd(30)} ${(performance.now() - started).toFixed(1).padStart(8)} ms`);
  };
  console.log(`${dist}: ${events} events kept`);
  for (let i = 1; i <= 4; i++) await timed(`load() #${i}`, () => store.load());
  await timed('getLeaderboard()', () => metrics.getLeaderboard());
  await timed('first recordEvent()', () => metrics.recordEvent(eventInput(0)));
  await timed('load() after it', () => store.load());
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
