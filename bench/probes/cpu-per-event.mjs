// Cost of one recorded event: AgentMetrics.recordEvent() on a store with `durability: 'none'`
// (no disk wait), sequentially, then from 64 concurrent callers (group commit); then the same with
// fsync. Wall time per event, and for 64 callers the CPU time per event (process.cpuUsage) after
// as many events again of warm-up with 64 callers. Run `npm run build` first.
//   node bench/probes/cpu-per-event.mjs [--ops=3000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentMetrics, MetricsStore } from '../../dist/index.js';

const ops = Number(process.argv.find((a) => a.startsWith('--ops='))?.split('=')[1] ?? 3000);
const input = (i) => ({
  agentName: `agent-${i % 5}`,
  status: 'success',
  inputTokens: 10,
  outputTokens: 5,
  sessionId: 's',
  ticketKey: 'T-1',
  artifacts: ['commit:abc', 'file:src/a.ts'],
});

for (const durability of ['none', 'fsync']) {
  const dir = mkdtempSync(join(tmpdir(), 'cpu-per-event-'));
  const store = new MetricsStore({ projectName: 'probe', dir, durability });
  const metrics = new AgentMetrics({ store, strict: true });
  for (let i = 0; i < 600; i++) await metrics.recordEvent(input(i)); // warm up, FIFO full
  let started = performance.now();
  for (let i = 0; i < ops; i++) await metrics.recordEvent(input(i));
  const sequentialUs = ((performance.now() - started) / ops) * 1000;
  const perCaller = Math.ceil(ops / 64);
  const concurrently = () =>
    Promise.all(
      Array.from({ length: 64 }, async (_, caller) => {
        for (let i = 0; i < perCaller; i++) await metrics.recordEvent(input(caller + i));
      }),
    );
  await concurrently(); // warm-up of the batched path
  const cpuBefore = process.cpuUsage();
  started = performance.now();
  await concurrently();
  const concurrentUs = ((performance.now() - started) / (perCaller * 64)) * 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuUs = (cpu.user + cpu.system) / (perCaller * 64);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(
    `durability ${durability.padEnd(5)}  sequential ${sequentialUs.toFixed(0)} µs/event  64 callers ${concurrentUs.toFixed(0)} µs/event (${(1e6 / concurrentUs).toFixed(0)} events/s, CPU ${cpuUs.toFixed(0)} µs/event)`,
  );
}
