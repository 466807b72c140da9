// Events/s of N processes recording into one project at once, each a sequential caller of
// AgentMetrics.recordEvent() on the benchmark's event, with a given `lockLeaseMs`; per process, the
// latency (median, p99, max), how many times it took the lock, and its CPU time (user + system,
// all threads) per event. Each process first warms up alone in a
// project of its own. Run `npm run build` first; run the lease values alternately (the machine's
// speed drifts). `DIST=<another build's dist folder>` measures another build.
//   node bench/probes/lease-processes.mjs [--processes=8] [--events=300] [--lease=4] [--separate]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { eventInput } from '../workload.mjs';
import { now, readyAndWait, runChildren, warmUpAside } from './barrier.mjs';

const arg = (name, fallback) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const processes = arg('processes', 8);
const events = arg('events', 300);
const lease = arg('lease', 4);
const WARMUP = 2000;

if (process.env.LEASE_PROBE_DIR) {
  const dist = resolve(process.env.DIST ?? fileURLToPath(new URL('../../dist', import.meta.url)));
  const { AgentMetrics, MetricsStore } = await import(pathToFileURL(join(dist, 'index.js')).href);
  const open = (dir) => {
    const store = new MetricsStore({ projectName: 'bench', dir, lockLeaseMs: lease });
    return { store, metrics: new AgentMetrics({ store, strict: true }) };
  };
  await warmUpAside(open, WARMUP);
  const { store, metrics } = open(process.env.LEASE_PROBE_DIR);
  await readyAndWait();
  const latencies = [];
  const cpuBefore = process.cpuUsage();
  const started = now();
  for (let i = 0; i < events; i++) {
    const before = performance.now();
    await metrics.recordEvent(eventInput(i));
    latencies.push(performance.now() - before);
  }
  const ended = now();
  // Private, for this probe only: how many times flock granted the lock.
  const acquisitions = store.lock.acquisitions;
  await store.close();
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  process.send({
    started,
    ended,
    acquisitions,
    p50: latencies[latencies.length >> 1],
    p99: latencies[Math.floor(latencies.length * 0.99)],
    max: latencies.at(-1),
    cpuUs: (cpu.user + cpu.system) / events,
    userUs: cpu.user / events,
  });
} else {
  // With --separate, each process records into a project of its own: no lock or file is shared
  // (the CPUs and the disk still are), so the figure is what the processes reach without waiting
  // for one another.
  const separate = process.argv.includes('--separate');
  const dir = mkdtempSync(join(tmpdir(), 'lease-probe-'));
  const { runs, seconds } = await runChildren(
    fileURLToPath(import.meta.url),
    Array.from({ length: processes }, (_, index) => ({
      LEASE_PROBE_DIR: separate ? mkdtempSync(join(dir, `project-${index}-`)) : dir,
    })),
  );
  for (const run of runs) {
    console.log(
      `  took the lock ${run.acquisitions} times for ${events} events, p50 ${run.p50.toFixed(3)} ms, ` +
        `p99 ${run.p99.toFixed(2)} ms, max ${run.max.toFixed(1)} ms, CPU ${run.cpuUs.toFixed(0)} µs/event (user ${run.userUs.toFixed(0)})`,
    );
  }
  console.log(
    `lockLeaseMs ${lease}${separate ? ', separate projects' : ''}: ${processes} processes × ${events} events: ${((processes * events) / seconds).toFixed(0)} events/s`,
  );
  rmSync(dir, { recursive: true, force: true });
}
