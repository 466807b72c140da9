// Where the time goes when several processes record into one project. Per process: the median
// time the lock is held per update, inside it the time spent reading the other processes' journal
// lines and writing our own, the fdatasync after the release, and CPU per event (the whole
// process, and its main thread alone, from /proc on Linux), over the middle half of its events
// (the first quarter warms the code up). Across processes: events/s over the middle half of all
// lock holds, and the hand-over, from one process's end of hold to the next one's start.
// Run `npm run build` first.
//   node bench/probes/lock-hold.mjs [--processes=8] [--events=1000]
// PROBE_NODE_ARGS passes flags to the children (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
// It wraps private members of MetricsStore (`lock`, `readLocked`, `appender`): a probe for
// engineers, expected to need updating when those change.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (name, fallback) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]?.toFixed(3);
const mean = (list) => (list.reduce((sum, x) => sum + x, 0) / list.length).toFixed(3);
const now = () => performance.timeOrigin + performance.now();

/** CPU time of this process's main thread in ms (Linux), else undefined. */
function mainThreadCpuMs() {
  const path = `/proc/self/task/${process.pid}/stat`;
  if (!existsSync(path)) return undefined;
  const stat = readFileSync(path, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 10 ms ticks
}

async function child(dir, events) {
  const { AgentMetrics, MetricsStore } = await import('../../dist/index.js');
  const store = new MetricsStore({ projectName: 'probe', dir });
  const times = { hold: [], read: [], append: [], sync: [] };
  const holds = []; // [start, end] of each lock hold, in ms since the epoch
  let measuring = false;
  const timed =
    (key, fn) =>
    async (...args) => {
      const started = performance.now();
      try {
        return await fn(...args);
      } finally {
        if (measuring) times[key].push(performance.now() - started);
      }
    };
  const lock = store.lock;
  const run = lock.run.bind(lock);
  lock.run = (fn) =>
    run(async () => {
      const start = now();
      try {
        return await timed('hold', fn)();
      } finally {
        holds.push([start, now()]);
      }
    });
  store.readLocked = timed('read', store.readLocked.bind(store));
  store.appender.write = timed('append', store.appender.write.bind(store.appender));
  store.appender.syncWritten = timed('sync', store.appender.syncWritten.bind(store.appender));
  const metrics = new AgentMetrics({ store, strict: true });
  const from = Math.floor(events / 4);
  const to = Math.floor((events * 3) / 4);
  let cpuBefore;
  let mainBefore;
  let wallBefore;
  let cpu;
  let mainCpu;
  let wall;
  for (let i = 0; i < events; i++) {
    if (i === from) {
      measuring = true;
      cpuBefore = process.cpuUsage();
      mainBefore = mainThreadCpuMs();
      wallBefore = performance.now();
    }
    if (i === to) {
      measuring = false;
      cpu = process.cpuUsage(cpuBefore);
      mainCpu = mainBefore === undefined ? undefined : mainThreadCpuMs() - mainBefore;
      wall = performance.now() - wallBefore;
    }
    await metrics.recordEvent({
      agentName: `agent-${i % 5}`,
      status: 'success',
      inputTokens: 10,
      outputTokens: 5,
    });
  }
  await store.close();
  writeFileSync(join(dir, `holds-${process.pid}.json`), JSON.stringify(holds));
  const measured = to - from;
  const main = mainCpu === undefined ? '' : `, main thread ${(mainCpu / measured).toFixed(3)} ms`;
  console.log(
    `pid ${process.pid}: lock held ${median(times.hold)} ms, of which reading others' lines ${median(times.read)} ms, write ${median(times.append)} ms; fdatasync after the release ${median(times.sync)} ms (medians); per event: CPU ${((cpu.user + cpu.system) / 1000 / measured).toFixed(3)} ms (${(cpu.system / 1000 / measured).toFixed(3)} system)${main}, wall ${(wall / measured).toFixed(3)} ms`,
  );
}

/** Events/s and the hand-over between holders, over the middle half of all lock holds. */
function acrossProcesses(dir, pids) {
  const holds = pids
    .flatMap((pid) => JSON.parse(readFileSync(join(dir, `holds-${pid}.json`), 'utf8')))
    .sort((a, b) => a[0] - b[0]);
  const middle = holds.slice(Math.floor(holds.length / 4), Math.floor((holds.length * 3) / 4));
  const handOvers = middle.slice(1).map((hold, index) => hold[0] - middle[index][1]);
  const span = middle.at(-1)[1] - middle[0][0];
  console.log(
    // A hold is one batch (here one event), or a background checkpoint (a few per run); a
    // hand-over may go back to the same process. Clocks of different processes agree to well
    // under a millisecond (performance.timeOrigin), not to the microsecond.
    `middle half of ${holds.length} lock holds: ${((middle.length / span) * 1000).toFixed(0)} holds/s (≈ events/s); hand-over from one hold to the next: median ${median(handOvers)} ms, mean ${mean(handOvers)} ms`,
  );
}

if (process.argv[2] === 'child') {
  await child(process.argv[3], Number(process.argv[4]));
} else {
  const processes = arg('processes', 8);
  const events = arg('events', 1000);
  if (events < 8) throw new Error('--events must be at least 8 (the middle half is measured)');
  const dir = mkdtempSync(join(tmpdir(), 'lock-hold-'));
  const pids = await Promise.all(
    Array.from(
      { length: processes },
      () =>
        new Promise((resolve) => {
          const node = spawn(
            process.execPath,
            [
              ...(process.env.PROBE_NODE_ARGS?.split(' ') ?? []),
              fileURLToPath(import.meta.url),
              'child',
              dir,
              String(events),
            ],
            { stdio: 'inherit' },
          );
          node.on('exit', () => resolve(node.pid));
        }),
    ),
  );
  acrossProcesses(dir, pids);
  rmSync(dir, { recursive: true, force: true });
}
