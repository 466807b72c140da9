// Events/s and CPU per event of the benchmark's SQLite peer (bench/stores.mjs: better-sqlite3,
// WAL, synchronous=FULL) in one sequential loop, to set beside `record-cpu.mjs --callers=1`
// (run the two in the same minute: the disk's speed drifts).
//   node bench/probes/sqlite-cpu.mjs [--ops=3000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STORES } from '../stores.mjs';

const ops = Number(process.argv.find((a) => a.startsWith('--ops='))?.split('=')[1] ?? 3000);
const dir = mkdtempSync(join(tmpdir(), 'sqlite-cpu-'));
const sqlite = STORES.sqlite;
await sqlite.prefill(dir, 500);
const store = await sqlite.open(dir, 500);
for (let seq = 0; seq < ops; seq++) await store.record(seq); // warm-up
const cpuBefore = process.cpuUsage();
const started = performance.now();
for (let seq = ops; seq < 2 * ops; seq++) await store.record(seq);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
await store.close();
rmSync(dir, { recursive: true, force: true });
console.log(
  `SQLite, 1 caller: ${(ops / seconds).toFixed(0)} events/s, CPU ${((cpu.user + cpu.system) / ops).toFixed(1)} µs/event ` +
    `(user ${(cpu.user / ops).toFixed(1)}, system ${(cpu.system / ops).toFixed(1)})`,
);
