import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'child.mjs');

/**
 * Starts `node bench/child.mjs <spec>`. `ready` resolves when the child has opened its store and
 * waits at the barrier; `go()` releases it; `result` resolves to its final report, or rejects
 * with its stderr when it dies without one.
 */
export function spawnChild(spec, script = CHILD) {
  const child = spawn(process.execPath, [script, JSON.stringify(spec)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  let markReady;
  const ready = new Promise((resolve) => {
    markReady = resolve;
  });
  const result = new Promise((resolve, reject) => {
    let report;
    createInterface({ input: child.stdout }).on('line', (line) => {
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        return; // Stray output of a library: not ours.
      }
      if (message.ready) markReady();
      // When the report arrived, not when the process has exited: exit time is not the store's.
      if (message.result) report = { ...message.result, arrivedAt: performance.now() };
    });
    child.on('close', (code, signal) => {
      if (report) resolve(report);
      else
        reject(new Error(`bench child ${spec.action} ${spec.store} exited (${signal ?? code}): ${stderr}`));
      markReady();
    });
  });
  return {
    ready,
    result,
    go() {
      child.stdin.end('go\n');
    },
  };
}
