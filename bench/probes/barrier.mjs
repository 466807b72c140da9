// The probes' barrier: the parent starts one child per entry of `envs` (this same script, with the
// same node flags and arguments), waits until each has said it is ready, lets them all go at
// once, and collects the report each sends back over IPC. Also the children's warm-up.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventInput } from '../workload.mjs';

/** Parent side: `{ runs, seconds }`, from the first child's start to the last one's end. */
export async function runChildren(script, envs) {
  const children = envs.map((env) =>
    spawn(process.execPath, [...process.execArgv, script, ...process.argv.slice(2)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  // A child that exits before its report fails the run (instead of leaving the parent waiting).
  const exited = (child) =>
    new Promise((_, reject) => {
      child.once('exit', (code, signal) =>
        reject(new Error(`a probe process exited before its report (code ${code}, signal ${signal})`)),
      );
    });
  const endings = children.map(exited);
  for (const ending of endings) ending.catch(() => undefined);
  const ready = children.map((child) => new Promise((resolve) => child.once('message', resolve)));
  await Promise.all(ready.map((message, index) => Promise.race([message, endings[index]])));
  const results = children.map(
    (child) => new Promise((resolve) => child.on('message', (m) => typeof m === 'object' && resolve(m))),
  );
  for (const child of children) child.send('go');
  const runs = await Promise.all(results.map((result, index) => Promise.race([result, endings[index]])));
  const seconds = (Math.max(...runs.map((r) => r.ended)) - Math.min(...runs.map((r) => r.started))) / 1000;
  return { runs, seconds };
}

/** Child side: says it is ready, then resolves when the parent lets the children go. */
export async function readyAndWait() {
  process.send('ready');
  await new Promise((resolve) => process.once('message', resolve));
}

/** Child side: the report, with `started` and `ended` (ms since the epoch) for `runChildren`. */
export const now = () => performance.timeOrigin + performance.now();

/**
 * Child side: `count` events through AgentMetrics in a project of its own (`open(dir)` gives
 * `{ store, metrics }`), removed afterwards, so that the JIT is warm before the measured project.
 */
export async function warmUpAside(open, count) {
  const aside = mkdtempSync(join(tmpdir(), 'probe-warmup-'));
  const warm = open(aside);
  for (let i = 0; i < count; i++) await warm.metrics.recordEvent(eventInput(i));
  await warm.store.close();
  rmSync(aside, { recursive: true, force: true });
}
