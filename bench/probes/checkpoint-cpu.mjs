// Wall time and CPU of `checkpoint()` in a project holding many events (the benchmark's event),
// 20 events recorded before each of 5 checkpoints. Run `npm run build` first; `DIST=<another
// build's dist folder>` measures another build (an A/B run: alternate the two).
//   node bench/probes/checkpoint-cpu.mjs [--events=50000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { eventInput, prefilledState } from '../workload.mjs';

const events = Number(process.argv.find((a) => a.startsWith('--events='))?.split('=')[1] ?? 50_000);
const dist = resolve(process.env.DIST ?? new URL('../../dist', import.meta.url).pathname);
const { AgentMetrics, MetricsStore } = await import(pathToFileURL(join(dist, 'index.js')).href);

const dir = mkdtempSync(join(tmpdir(), 'checkpoint-cpu-'));
await new MetricsStore({ projectName: 'bench', dir, maxEvents: events }).save(prefilledState(events));
const store = new MetricsStore({ projectName: 'bench', dir, maxEvents: events });
const metrics = new AgentMetrics({ store, strict: true });
const runs = [];
for (let run = 0; run < 5; run++) {
  for (let index = 0; index < 20; index++) await metrics.recordEvent(eventInput(index));
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await store.checkpoint();
  const cpu = process.cpuUsage(cpuBefore);
  runs.push(`${(performance.now() - started).toFixed(0)}/${((cpu.user + cpu.system) / 1000).toFixed(0)}`);
}
await store.close();
rmSync(dir, { recursive: true, force: true });
console.log(`${dist}: ${events} events, checkpoint() wall/CPU ms: ${runs.join(' ')}`);
