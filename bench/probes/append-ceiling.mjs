// The ceiling of N processes appending durably to one file, without any of the store's work: per
// append a flock, a 580-byte write, the unlock and an fdatasync, one sequential loop per process.
// What the lock costs, and what a write path whose appends share the lock (LOCK_SH + O_APPEND,
// replayed on read) could reach beside the exclusive one the store uses:
//   ex-sync         LOCK_EX, blocking flock on the event loop (a library cannot block its host so),
//                   the write at the file's end, fdatasync before the unlock;
//   ex-async        LOCK_EX taken as the store takes it (LOCK_NB first, else a blocking flock on the
//                   thread pool), fdatasync before the unlock;
//   ex-async-after  the same, fdatasync after the unlock, as the store does under contention (the
//                   processes' fdatasyncs then overlap);
//   sh-async        LOCK_SH taken the same way, the write with O_APPEND, fdatasync after the unlock.
//   node bench/probes/append-ceiling.mjs [--processes=8] [--appends=1000] [--modes=ex-sync,ex-async,ex-async-after,sh-async]
import { spawn } from 'node:child_process';
import { constants, fdatasyncSync, fstatSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flock, flockSync } from 'fs-ext';

const arg = (name, fallback) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const processes = Number(arg('processes', 8));
const appends = Number(arg('appends', 1000));
const modes = arg('modes', 'ex-sync,ex-async,ex-async-after,sh-async').split(',');

/** Takes the lock as `mode` says: a blocking flockSync, or LOCK_NB then flock on the thread pool. */
async function lock(fd, mode) {
  const kind = mode.startsWith('sh') ? 'sh' : 'ex';
  if (mode === 'ex-sync') return flockSync(fd, kind);
  try {
    flockSync(fd, `${kind}nb`);
  } catch {
    await new Promise((resolve, reject) => flock(fd, kind, (error) => (error ? reject(error) : resolve())));
  }
}

if (process.env.APPEND_CEILING_DIR) {
  const dir = process.env.APPEND_CEILING_DIR;
  const mode = process.env.APPEND_CEILING_MODE;
  const shared = mode.startsWith('sh');
  // The exclusive modes write where the file ends, as the store does; the shared one appends.
  const file = openSync(join(dir, 'journal'), shared ? 'a' : constants.O_WRONLY | constants.O_CREAT);
  const lockFile = openSync(join(dir, 'lock'), 'a');
  const line = Buffer.from(`${'x'.repeat(579)}\n`);
  process.send('ready');
  await new Promise((resolve) => process.once('message', resolve));
  const cpuBefore = process.cpuUsage();
  for (let i = 0; i < appends; i++) {
    await lock(lockFile, mode);
    if (shared) writeSync(file, line);
    else writeSync(file, line, 0, line.length, fstatSync(file).size);
    const syncAfterUnlock = shared || mode === 'ex-async-after';
    if (!syncAfterUnlock) fdatasyncSync(file);
    flockSync(lockFile, 'un');
    if (syncAfterUnlock) fdatasyncSync(file);
    // As the store's caller does: the next append comes from a later turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const cpu = process.cpuUsage(cpuBefore);
  process.send({ cpuUs: (cpu.user + cpu.system) / appends });
} else {
  for (const mode of modes) {
    const dir = mkdtempSync(join(tmpdir(), 'append-ceiling-'));
    const children = Array.from({ length: processes }, () =>
      spawn(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
        env: { ...process.env, APPEND_CEILING_DIR: dir, APPEND_CEILING_MODE: mode },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    await Promise.all(children.map((child) => new Promise((resolve) => child.once('message', resolve))));
    const results = children.map(
      (child) => new Promise((resolve) => child.on('message', (m) => typeof m === 'object' && resolve(m))),
    );
    const started = performance.now();
    for (const child of children) child.send('go');
    const runs = await Promise.all(results);
    const seconds = (performance.now() - started) / 1000;
    const cpuUs = runs.reduce((sum, run) => sum + run.cpuUs, 0) / runs.length;
    console.log(
      `${mode}: ${processes} processes × ${appends} appends: ${((processes * appends) / seconds).toFixed(0)} appends/s, ` +
        `CPU ${cpuUs.toFixed(0)} µs/append per process`,
    );
    rmSync(dir, { recursive: true, force: true });
  }
}
