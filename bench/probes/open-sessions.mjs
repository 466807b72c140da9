// Events/s and CPU per event of AgentMetrics.recordEvent() when `--open` sessions are in progress
// and the events go to them in turn (the benchmark's event, 3 tickets per session), from
// `--callers` concurrent callers, after as many events again of warm-up. Run `npm run build`
// first; `DIST=<another build's dist folder>` measures another build (alternate the two).
//   node bench/probes/open-sessions.mjs [--open=100] [--callers=64] [--ops=10000] [--durability=none|fsync]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { eventInput } from '../workload.mjs';

const arg = (name, fallback) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const open = Number(arg('open', 100));
const callers = Number(arg('callers', 64));
const ops = Number(arg('ops', 10_000));
const durability = arg('durability', 'none');
const dist = resolve(process.env.DIST ?? new URL('../../dist', import.meta.url).pathname);
const { AgentMetrics, MetricsStore } = await import(pathToFileURL(join(dist, 'index.js')).href);

const dir = mkdtempSync(join(tmpdir(), 'open-sessions-'));
const store = new MetricsStore({ projectName: 'bench', dir, durability });
const metrics = new AgentMetrics({ store, strict: true });
const sessionIds = [];
for (let index = 0; index < open; index++) sessionIds.push(await metrics.startSession());
const run = async (count) => {
  let seq = 0;
  const caller = async () => {
    while (seq < count) {
      const index = seq++;
      const sessionId = open > 0 ? sessionIds[index % open] : undefined;
      await metrics.recordEvent({ ...eventInput(index), sessionId, ticketKey: `AI-${index % 3}` });
    }
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
  `${dist}: ${open} sessions in progress, ${callers} caller(s), durability ${durability}: ` +
    `${(ops / seconds).toFixed(0)} events/s, CPU ${((cpu.user + cpu.system) / ops).toFixed(1)} µs/event`,
);
