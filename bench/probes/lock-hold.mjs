// Where the lock time goes when several processes record into one project: per process, the
// median time the lock is held per update, and inside it the time spent reading the other
// processes' journal lines and appending + fdatasyncing our own. Run `npm run build` first.
//   node bench/probes/lock-hold.mjs [--processes=8] [--events=300]
// It wraps private members of MetricsStore (`lock`, `readLocked`, `appender`): a probe for
// engineers, expected to need updating when those change.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (name, fallback) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);

async function child(dir, events) {
  const { AgentMetrics, MetricsStore } = await import('../../dist/index.js');
  const store = new MetricsStore({ projectName: 'probe', dir });
  const times = { hold: [], read: [], append: [], sync: [] };
  const timed =
    (key, fn) =>
    async (...args) => {
      const started = performance.now();
      try {
        return await fn(...args);
      } finally {
        times[key].push(performance.now() - started);
      }
    };
  const lock = store.lock;
  const run = lock.run.bind(lock);
  lock.run = (fn) => run(timed('hold', fn));
  store.readLocked = timed('read', store.readLocked.bind(store));
  store.appender.write = timed('append', store.appender.write.bind(store.appender));
  store.appender.syncWritten = timed('sync', store.appender.syncWritten.bind(store.appender));
  const metrics = new AgentMetrics({ store, strict: true });
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  for (let i = 0; i < events; i++) {
    await metrics.recordEvent({
      agentName: `agent-${i % 5}`,
      status: 'success',
      inputTokens: 10,
      outputTokens: 5,
    });
  }
  const cpu = process.cpuUsage(cpuBefore);
  const wall = performance.now() - wallBefore;
  await store.close();
  const median = (list) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)]?.toFixed(3);
  console.log(
    `pid ${process.pid}: lock held ${median(times.hold)} ms, of which reading others' lines ${median(times.read)} ms, append ${median(times.append)} ms; fdatasync after the release ${median(times.sync)} ms (medians); per event: CPU ${((cpu.user + cpu.system) / 1000 / events).toFixed(3)} ms (${(cpu.system / 1000 / events).toFixed(3)} system), wall ${(wall / events).toFixed(3)} ms`,
  );
}

if (process.argv[2] === 'child') {
  await child(process.argv[3], Number(process.argv[4]));
} else {
  const processes = arg('processes', 8);
  const events = arg('events', 300);
  const dir = mkdtempSync(join(tmpdir(), 'lock-hold-'));
  const started = performance.now();
  await Promise.all(
    Array.from(
      { length: processes },
      () =>
        new Promise((resolve) =>
          spawn(
            process.execPath,
            [
              ...(process.env.PROBE_NODE_ARGS?.split(' ') ?? []),
              fileURLToPath(import.meta.url),
              'child',
              dir,
              String(events),
            ],
            {
              stdio: 'inherit',
            },
          ).on('exit', resolve),
        ),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${processes} processes × ${events} events: ${((processes * events) / seconds).toFixed(0)} events/s (process start-up included)`,
  );
  rmSync(dir, { recursive: true, force: true });
}
