// Events/s and CPU per event of AgentMetrics.recordEvent() when the events go to many agents in
// turn (the benchmark's event, its agent name replaced), from `--callers` concurrent callers,
// after as many events again of warm-up (each agent has its profile by then). Run `npm run build`
// first; `DIST=<another build's dist folder>` measures another build (alternate the two).
//   node bench/probes/many-agents.mjs [--agents=1000] [--callers=64] [--ops=20000] [--durability=none|fsync]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { eventInput } from '../workload.mjs';

const arg = (name, fallback) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const agents = Number(arg('agents', 1000));
const callers = Number(arg('callers', 64));
const ops = Number(arg('ops', 20_000));
const durability = arg('durability', 'none');
const dist = resolve(process.env.DIST ?? new URL('../../dist', import.meta.url).pathname);
const { AgentMetrics, MetricsStore } = await import(pathToFileURL(join(dist, 'index.js')).href);

const dir = mkdtempSync(join(tmpdir(), 'many-agents-'));
const store = new MetricsStore({ projectName: 'bench', dir, durability });
const metrics = new AgentMetrics({ store, strict: true });
const run = async (count) => {
  let seq = 0;
  const caller = async () => {
    while (seq < count) {
      const index = seq++;
      await metrics.recordEvent({ ...eventInput(index), agentName: `agent-${index % agents}` });
    }
  };
  await Promise.all(Array.from({ length: callers }, caller));
};
await run(Math.max(ops, 2 * agents));
const cpuBefore = process.cpuUsage();
const started = performance.now();
await run(ops);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
await store.close();
rmSync(dir, { recursive: true, force: true });
console.log(
  `${dist}: ${agents} agents, ${callers} caller(s), durability ${durability}: ${(ops / seconds).toFixed(0)} events/s, ` +
    `CPU ${((cpu.user + cpu.system) / ops).toFixed(1)} µs/event`,
);
