// CPU per `commit()` with a plain or an `async` mutator (the same one-line change), sequential,
// `durability: 'none'` so that the CPU of the update itself shows: what the mutator guard's
// AsyncLocalStorage, which every mutator runs in, costs (src/store/mutator-guard.ts). 5,000
// updates of warm-up, then 20,000 measured. `npm run build` first; `DIST=<another build's dist>`
// for A/B runs.
//   node bench/probes/update-cpu.mjs [--mutator=plain|async]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const arg = (name, fallback) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const kind = arg('mutator', 'plain');
const dist = resolve(process.env.DIST ?? new URL('../../dist', import.meta.url).pathname);
const { MetricsStore } = await import(pathToFileURL(join(dist, 'index.js')).href);

const dir = mkdtempSync(join(tmpdir(), 'update-cpu-'));
const store = new MetricsStore({ projectName: 'bench', dir, durability: 'none' });
const mutate =
  kind === 'async'
    ? async (state) => {
        state.total_tokens += 1;
      }
    : (state) => {
        state.total_tokens += 1;
      };
const run = async (count) => {
  for (let index = 0; index < count; index++) await store.commit(mutate);
};
await run(5_000);
const cpu = process.cpuUsage();
const start = performance.now();
await run(20_000);
const used = process.cpuUsage(cpu);
const seconds = (performance.now() - start) / 1000;
console.log(
  `${dist}: ${kind} mutator, ${((used.user + used.system) / 20_000).toFixed(1)} µs of CPU per update, ` +
    `${(20_000 / seconds).toFixed(0)} updates/s`,
);
await store.close();
rmSync(dir, { recursive: true, force: true });
