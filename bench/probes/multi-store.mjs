// Any store of bench/stores.mjs (ours, SQLite, …) in N processes at once: events/s, CPU per event
// (user + system, all threads, averaged over the processes), failed calls and lost updates. Each
// process warms up alone in a project of its own (`--warmup` events), opens the measured project,
// waits for the others, then records `--events` events. `--separate`: each process measures in a
// project of its own (nothing shared but the CPUs and the disk). `--chunks`: each process also
// prints its CPU per event for every 500 events (how it changes as the process warms up).
// Unlike `npm run bench` (bench/child.mjs), the timed window and the CPU end before `close()` (our
// store's last checkpoint is not in them), and the warm-up is a number of events, not capped by
// time. Run `npm run build` first.
//   node bench/probes/multi-store.mjs --store=sqlite [--processes=8] [--events=1000] [--warmup=2000]
//                                     [--separate] [--chunks]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STORES } from '../stores.mjs';
import { now, readyAndWait, runChildren } from './barrier.mjs';

const arg = (name, fallback) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const storeName = arg('store', 'ours-record');
const store = STORES[storeName];
if (!store) throw new Error(`unknown store ${storeName}: one of ${Object.keys(STORES).join(', ')}`);
const processes = Number(arg('processes', 8));
const events = Number(arg('events', 1000));
const warmup = Number(arg('warmup', 2000));
const MAX_EVENTS = 500;
const CHUNK = 500;

if (process.env.MULTI_STORE_DIR) {
  const aside = mkdtempSync(join(tmpdir(), 'multi-store-warmup-'));
  await store.prefill(aside, MAX_EVENTS);
  const warm = await store.open(aside, MAX_EVENTS);
  for (let i = 0; i < warmup; i++) await warm.record(i);
  await warm.close();
  rmSync(aside, { recursive: true, force: true });
  const handle = await store.open(process.env.MULTI_STORE_DIR, MAX_EVENTS);
  await readyAndWait();
  const firstSeq = 1_000_000 * (Number(process.env.MULTI_STORE_INDEX) + 1);
  const chunks = [];
  const cpuBefore = process.cpuUsage();
  let chunkCpu = cpuBefore;
  const started = now();
  let failed = 0;
  for (let i = 0; i < events; i++) {
    try {
      await handle.record(firstSeq + i);
    } catch (error) {
      failed += 1;
      if (failed === 1) console.error(`process ${process.env.MULTI_STORE_INDEX}: ${error}`);
    }
    if ((i + 1) % CHUNK === 0) {
      const used = process.cpuUsage(chunkCpu);
      chunks.push(Math.round((used.user + used.system) / CHUNK));
      chunkCpu = process.cpuUsage();
    }
  }
  const ended = now();
  const cpu = process.cpuUsage(cpuBefore);
  await handle.close();
  process.send({ started, ended, cpuUs: (cpu.user + cpu.system) / events, chunks, failed });
} else {
  const separate = process.argv.includes('--separate');
  const root = mkdtempSync(join(tmpdir(), 'multi-store-'));
  const dirs = Array.from({ length: processes }, (_, index) =>
    separate ? mkdtempSync(join(root, `project-${index}-`)) : root,
  );
  const projects = [...new Set(dirs)];
  const invocations = async () =>
    (await Promise.all(projects.map((dir) => store.invocations(dir)))).reduce((a, b) => a + b);
  try {
    for (const dir of projects) await store.prefill(dir, MAX_EVENTS);
    const prefilled = await invocations();
    const { runs, seconds } = await runChildren(
      fileURLToPath(import.meta.url),
      dirs.map((dir, index) => ({ MULTI_STORE_DIR: dir, MULTI_STORE_INDEX: String(index) })),
    );
    const stored = await invocations();
    if (process.argv.includes('--chunks')) {
      for (const [index, run] of runs.entries()) {
        console.log(`  process ${index}: CPU µs/event per ${CHUNK}: ${run.chunks.join(' ')}`);
      }
    }
    const failed = runs.reduce((sum, run) => sum + run.failed, 0);
    const acknowledged = processes * events - failed;
    const cpu = runs.reduce((sum, run) => sum + run.cpuUs, 0) / runs.length;
    console.log(
      `${storeName}, ${processes} processes${separate ? ', separate projects' : ''}, ${events} events each ` +
        `after ${warmup} aside: ${(acknowledged / seconds).toFixed(0)} events/s, CPU ${cpu.toFixed(0)} µs/event, ` +
        `${failed} failed, ${prefilled + acknowledged - stored} lost`,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
