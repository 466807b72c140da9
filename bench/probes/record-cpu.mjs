// Events/s and CPU per event of AgentMetrics.recordEvent() on the benchmark's event
// (bench/workload.mjs), from `--callers` concurrent callers, after as many events again of warm-up.
// Run `npm run build` first. `DIST=<another build's dist folder>` measures another build (an A/B
// run: alternate the two); `node --cpu-prof` in front profiles it.
//   node bench/probes/record-cpu.mjs [--callers=64] [--ops=20000] [--durability=fsync|none]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { eventInput } from '../workload.mjs';

const arg = (name, fallback) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const callers = Number(arg('callers', 64));
const ops = Number(arg('ops', 20_000));
const durability = arg('durability', 'fsync');
const dist = resolve(process.env.DIST ?? new URL('../../dist', import.meta.url).pathname);
const { AgentMetrics, MetricsStore } = await import(pathToFileURL(join(dist, 'index.js')).href);

const dir = mkdtempSync(join(tmpdir(), 'record-cpu-'));
const store = new MetricsStore({ projectName: 'bench', dir, durability });
const metrics = new AgentMetrics({ store, strict: true });
const run = async (count) => {
  let seq = 0;
  const caller = async () => {
    while (seq < count) await metrics.recordEvent(eventInput(seq++));
  };
  await Promise.all(Array.from({ length: callers }, caller));
};
await run(ops);
const cpuBefore = process.cpuUsage();
const started = performance.now();
await run(ops);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
await store.close();
rmSync(dir, { recursive: true, force: true });
console.log(
  `${dist}: ${callers} caller(s), durability ${durability}: ${(ops / seconds).toFixed(0)} events/s, ` +
    `CPU ${((cpu.user + cpu.system) / ops).toFixed(1)} µs/event (user ${(cpu.user / ops).toFixed(1)}, ` +
    `system ${(cpu.system / ops).toFixed(1)})`,
);
