// What 8 processes could reach if they shared fdatasyncs (cross-process group commit), against the
// SQLite peer in the same run. Not a feature of the store: a measurement of one design's ceiling.
// Process 0 (the "leader") owns one MetricsStore and listens on a Unix socket; processes 1..N-1
// send it their events (AgentMetrics.recordEvent input, one JSON line each) and wait for its
// answer, which it sends once the event is on disk. The leader records each as it arrives, and its
// own events too, so concurrent callers share one append and one fdatasync (the store's group
// commit). Each process is a sequential caller, as in `npm run bench`'s 8-process job. Prints
// events/s, CPU per event (all processes), lost updates, and SQLite's figure from
// multi-store.mjs's children in the same minutes. What it leaves out: what a client does when
// the leader dies with its event in flight (see the README, "What is left").
//   node bench/probes/forward-ceiling.mjs [--processes=8] [--events=1500] [--warmup=2000] [--background-sync]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STORES } from '../stores.mjs';
import { eventInput, PROJECT } from '../workload.mjs';
import { now, readyAndWait, runChildren, warmUpAside } from './barrier.mjs';

const arg = (name, fallback) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const processes = arg('processes', 8);
const events = arg('events', 1500);
const warmup = arg('warmup', 2000);
const MAX_EVENTS = 500;

/** Splits a socket's data into lines; calls `onLine` with each. */
function lines(socket, onLine) {
  let rest = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop();
    for (const part of parts) onLine(part);
  });
}

async function leader(dir, socketPath) {
  const { AgentMetrics, MetricsStore, nodeFileSystem } = await import('../../dist/index.js');
  // --background-sync: every fdatasync on the thread pool, so that the leader reads its sockets
  // while the disk works (inline, a lone batch's fdatasync blocks the event loop).
  const fileSystem = process.argv.includes('--background-sync')
    ? { ...nodeFileSystem, fdatasync: (fd) => nodeFileSystem.fdatasync(fd, { background: true }) }
    : nodeFileSystem;
  const open = (where) => {
    const store = new MetricsStore({ projectName: PROJECT, dir: where, maxEvents: MAX_EVENTS, fileSystem });
    return { store, metrics: new AgentMetrics({ store, strict: true }) };
  };
  await warmUpAside(open, warmup);
  const { store, metrics } = open(dir);
  let served = 0;
  const server = createServer((socket) => {
    lines(socket, (line) => {
      const { seq, input } = JSON.parse(line);
      metrics.recordEvent(input).then(
        () => {
          served += 1;
          socket.write(`${seq}\n`);
        },
        (error) => socket.write(`${JSON.stringify({ seq, error: String(error) })}\n`),
      );
    });
  });
  await new Promise((resolve) => server.listen(socketPath, resolve));
  await readyAndWait();
  const cpuBefore = process.cpuUsage();
  const started = now();
  for (let i = 0; i < events; i++) await metrics.recordEvent(eventInput(1_000_000 + i));
  const ownEnded = now();
  // The clients' events: wait until all were answered before stopping the clock.
  while (served < (processes - 1) * events) await new Promise((resolve) => setTimeout(resolve, 1));
  const ended = now();
  const cpu = process.cpuUsage(cpuBefore);
  server.close();
  await store.close();
  return { started, ended: Math.max(ended, ownEnded), cpuUs: cpu.user + cpu.system, failed: 0 };
}

async function client(index, socketPath) {
  // The same domain work as the leader's warm-up would JIT: the client only serializes here.
  await readyAndWait();
  const cpuBefore = process.cpuUsage();
  const started = now();
  let socket;
  for (;;) {
    try {
      socket = await new Promise((resolve, reject) => {
        const s = createConnection(socketPath, () => resolve(s));
        s.once('error', reject);
      });
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
  const waiting = new Map();
  let failed = 0;
  lines(socket, (line) => {
    const answer = line.startsWith('{') ? JSON.parse(line) : { seq: Number(line) };
    if (answer.error) failed += 1;
    waiting.get(answer.seq)?.();
    waiting.delete(answer.seq);
  });
  const first = 1_000_000 * (index + 1);
  for (let i = 0; i < events; i++) {
    const seq = first + i;
    const answered = new Promise((resolve) => waiting.set(seq, resolve));
    socket.write(`${JSON.stringify({ seq, input: eventInput(seq) })}\n`);
    await answered;
  }
  const ended = now();
  const cpu = process.cpuUsage(cpuBefore);
  socket.end();
  return { started, ended, cpuUs: cpu.user + cpu.system, failed };
}

if (process.env.FORWARD_DIR) {
  const index = Number(process.env.FORWARD_INDEX);
  const run =
    index === 0
      ? await leader(process.env.FORWARD_DIR, process.env.FORWARD_SOCKET)
      : await client(index, process.env.FORWARD_SOCKET);
  process.send(run);
} else {
  const ours = STORES['ours-record'];
  const root = mkdtempSync(join(tmpdir(), 'forward-'));
  try {
    await ours.prefill(root, MAX_EVENTS);
    const prefilled = await ours.invocations(root);
    const socketPath = join(root, 'leader.sock');
    const { runs, seconds } = await runChildren(
      fileURLToPath(import.meta.url),
      Array.from({ length: processes }, (_, index) => ({
        FORWARD_DIR: root,
        FORWARD_SOCKET: socketPath,
        FORWARD_INDEX: String(index),
      })),
    );
    const failed = runs.reduce((sum, run) => sum + run.failed, 0);
    const acknowledged = processes * events - failed;
    const stored = await ours.invocations(root);
    const cpu = runs.reduce((sum, run) => sum + run.cpuUs, 0) / (processes * events);
    const [lead, ...clients] = runs;
    console.log(
      `  leader: ${(lead.cpuUs / 1e3).toFixed(0)} ms of CPU in ${(lead.ended - lead.started).toFixed(0)} ms; ` +
        `clients: ${(clients.reduce((sum, run) => sum + run.cpuUs, 0) / clients.length / 1e3).toFixed(0)} ms each on average`,
    );
    console.log(
      `ours through one leader, ${processes} processes × ${events} events: ${(acknowledged / seconds).toFixed(0)} events/s, ` +
        `CPU ${cpu.toFixed(0)} µs/event (all processes), ${failed} failed, ${prefilled + acknowledged - stored} lost`,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  // The peer in the same minutes, measured as multi-store.mjs measures it.
  const probe = fileURLToPath(new URL('./multi-store.mjs', import.meta.url));
  for (const store of ['sqlite', 'ours-record']) {
    process.stdout.write(
      execFileSync(process.execPath, [
        probe,
        `--store=${store}`,
        `--processes=${processes}`,
        `--events=${events}`,
        `--warmup=${warmup}`,
      ]),
    );
  }
}
