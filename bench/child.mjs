// One store, one job, in its own process (so peak RSS is that store's alone).
//   node bench/child.mjs '<json spec>'
// spec: { action: 'run', store, dir, maxEvents, ops, callers, warmup, warmupMs, warmupAside, capMs, barrier,
//         firstSeq }
// (Prefilling and counting are done by the parent: they are not measured.)
// Prints JSON lines: {"ready":true} when `barrier` is set (then waits for a line on stdin before
// running), and one final {"result": …}.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { STORES } from './stores.mjs';

const spec = JSON.parse(process.argv[2]);
const store = STORES[spec.store];
if (!store) throw new Error(`unknown store ${spec.store}`);

function send(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function waitForGo() {
  return new Promise((resolve) => {
    const lines = createInterface({ input: process.stdin });
    lines.once('line', () => {
      lines.close();
      resolve();
    });
  });
}

/**
 * Runs `ops` recordings from `callers` concurrent async loops (1 = sequential), stopping early
 * when `capMs` has passed. Failed calls are counted, not retried: an error is an outcome too.
 */
async function run(opened) {
  let handle = opened;
  const errors = {};
  const count = (error) => {
    // One key per kind of failure: paths and byte offsets vary from call to call.
    const message = String(error?.message ?? error)
      .replaceAll(spec.dir, '<dir>')
      .replace(/position \d+/, 'position N');
    const key = `${error?.code ?? error?.name}: ${message.slice(0, 120)}`;
    errors[key] = (errors[key] ?? 0) + 1;
  };
  // A library that rejects a promise nobody awaits would kill the process: count it instead.
  process.on('unhandledRejection', (error) => count({ ...error, name: `unhandled ${error?.name}` }));
  let seq = spec.firstSeq;
  const callers = store.concurrent ? spec.callers : 1;
  /** Makes `ops` calls (or as many as fit until `deadline`) from `callers` concurrent callers. */
  async function calls(ops, deadline, onDone) {
    let next = 0;
    async function caller() {
      while (next < ops && performance.now() < deadline) {
        next += 1;
        const began = performance.now();
        try {
          await handle.record(seq++);
          onDone(performance.now() - began);
        } catch (error) {
          count(error);
        }
      }
    }
    await Promise.all(Array.from({ length: callers }, caller));
  }
  // Warm-up on the workload that is then measured (same callers): `warmup` ops, or as many as
  // fit in `warmupMs` when that is set. With `warmupAside`, in a project of its own (several
  // processes warming up in the shared one would contend for it, and stay cold).
  let warmedUp = 0;
  const warmupEnds = spec.warmupMs ? performance.now() + spec.warmupMs : Number.POSITIVE_INFINITY;
  const measured = handle;
  if (spec.warmupAside) {
    const aside = mkdtempSync(join(tmpdir(), 'bench-warmup-'));
    await store.prefill(aside, spec.maxEvents);
    handle = await store.open(aside, spec.maxEvents);
    await calls(spec.warmup, warmupEnds, () => undefined);
    await handle.close();
    rmSync(aside, { recursive: true, force: true });
    handle = measured;
  } else {
    await calls(spec.warmup, warmupEnds, () => {
      warmedUp += 1;
    });
  }
  if (spec.barrier) {
    send({ ready: true });
    await waitForGo();
  }
  const latencies = [];
  const start = performance.now();
  await calls(spec.ops, start + spec.capMs, (ms) => latencies.push(ms));
  // Closing is part of the work: our store folds its journal into the JSON file there, so every
  // run pays for at least one checkpoint inside the timed window.
  await handle.close();
  const seconds = (performance.now() - start) / 1000;
  const maxRssKb = process.resourceUsage().maxRSS;
  return { done: latencies.length, warmup: warmedUp, seconds, latencies, errors, maxRssKb, callers };
}

if (spec.action !== 'run') throw new Error(`unknown action ${spec.action}`);
send({ result: await run(await store.open(spec.dir, spec.maxEvents)) });
