// Events/s and CPU per event of AgentMetrics.recordEvent() on the benchmark's event
// (bench/workload.mjs), from `--callers` concurrent callers, after as many events again of warm-up.
// `--agents=N` spreads the events over N agents in turn (their profiles made in the warm-up);
// `--open=N` records them in N sessions in progress in turn (3 tickets per session).
// Run `npm run build` first. `DIST=<another build's dist folder>` measures another build (an A/B
// run: alternate the two); `node --cpu-prof` in front profiles it.
//   node bench/probes/record-cpu.mjs [--callers=64] [--ops=20000] [--durability=fsync|none]
//                                    [--agents=1] [--open=0]
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
const agents = Number(arg('agents', 1));
const open = Number(arg('open', 0));
const dist = resolve(process.env.DIST ?? new URL('../../dist', import.meta.url).pathname);
const { AgentMetrics, MetricsStore } = await import(pathToFileURL(join(dist, 'index.js')).href);

const dir = mkdtempSync(join(tmpdir(), 'record-cpu-'));
const store = new MetricsStore({ projectName: 'bench', dir, durability });
const metrics = new AgentMetrics({ store, strict: true });
const sessionIds = [];
for (let index = 0; index < open; index++) sessionIds.push(await metrics.startSession());

function input(seq) {
  const event = eventInput(seq);
  if (agents > 1) event.agentName = `agent-${seq % agents}`;
  if (open > 0) Object.assign(event, { sessionId: sessionIds[seq % open], ticketKey: `AI-${seq % 3}` });
  return event;
}
const run = async (count) => {
  let seq = 0;
  const caller = async () => {
    while (seq < count) await metrics.recordEvent(input(seq++));
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
const spread = `${agents > 1 ? `, ${agents} agents` : ''}${open > 0 ? `, ${open} sessions in progress` : ''}`;
console.log(
  `${dist}: ${callers} caller(s)${spread}, durability ${durability}: ${(ops / seconds).toFixed(0)} events/s, ` +
    `CPU ${((cpu.user + cpu.system) / ops).toFixed(1)} µs/event (user ${(cpu.user / ops).toFixed(1)}, ` +
    `system ${(cpu.system / ops).toFixed(1)})`,
);
