// Where the time of one MetricsStore.update() goes, by phase, for one state size (own process).
//   node bench/breakdown.mjs '{"dir": "...", "maxEvents": 500, "ops": 50}'
// An update takes the lock (kept descriptor: flock, stat of the path, pid write, unlock), stats the
// JSON file and the journal to see whether another process wrote, runs the mutator on a working
// copy, diffs, validates and encodes the change as one journal line, appends it and fdatasyncs it
// (README "How a write works"). File-system phases are timed through the store's injectable
// FileSystem, each call attributed by method and by the file it touches. The CPU steps cannot be
// timed apart: the store imports them from its own modules (dist/index.js exports none it calls
// per update, and an ES module's bindings cannot be replaced from outside), so everything but the
// mutator is reported together as the rest of the measured total. The checkpoint that close()
// makes is timed on its own, once, not per update.
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { METRICS_FILE, MetricsStore, nodeFileSystem } from '../dist/index.js';
import { linesEnd } from '../dist/store/journal-format.js';
import { applyEvent, makeEvent, PROJECT, prefilledState } from './workload.mjs';

const { dir: given, maxEvents, ops } = JSON.parse(process.argv[2]);
// As the store resolves it: its folder fsyncs name this path.
const dir = resolve(given);
// The store's other file names are not exported; these are its constants in metrics-store.ts.
const mainPath = join(dir, METRICS_FILE);
const journalPath = join(dir, '.agent_metrics.journal');
const lockPath = join(dir, '.agent_metrics.lock');

const LOCK = 'lock (flock, stat, pid)';
const LOOK = "look for other writers' changes (stat)";
const READ = "read other writers' lines";
const APPEND = 'append line (write)';
const SYNC = 'fdatasync journal';
const CHECKPOINT = 'checkpoint (snapshot, links, renames, fsyncs)';
const OTHER_IO = 'other file-system calls';
const MUTATOR = 'mutator (applyEvent on the working copy)';
const REST = 'CPU: working copy, diff, validation, encoding (rest)';
const FILE_PHASES = [LOCK, LOOK, READ, APPEND, SYNC, CHECKPOINT, OTHER_IO];

const spent = new Map();
const add = (phase, ms) => spent.set(phase, (spent.get(phase) ?? 0) + ms);
/** The phase of each open descriptor, decided by the path and mode it was opened with. */
const phaseOfFd = new Map();
/**
 * Renames onto the JSON file: one per checkpoint. One starts in the background once the journal
 * holds 4 MiB (~1,900 updates here), so rarely within `ops`; its fsyncs then overlap the updates
 * that run meanwhile, and the rest (total minus the timed phases) comes out that much smaller.
 */
let checkpoints = 0;

function phaseOfPath(path, mode) {
  if (path === lockPath) return LOCK;
  if (path === journalPath) return mode === 'read-write' ? APPEND : READ;
  // Temp files of every target (`<file>.tmp-*`), the backups, and the folder opened to fsync it.
  if (path.startsWith(`${mainPath}.`) || path.startsWith(`${journalPath}.`) || path === dir)
    return CHECKPOINT;
  return OTHER_IO;
}

function phaseOfCall(method, args) {
  switch (method) {
    case 'open':
      return phaseOfPath(args[0], args[1]);
    case 'stat':
      // A checkpoint's own stats of these two (before linking them as backups) land here too:
      // microseconds, against the snapshot write and fsyncs the checkpoint row holds.
      if (args[0] === mainPath || args[0] === journalPath) return LOOK;
      return phaseOfPath(args[0]);
    case 'readFile':
      // The JSON file is re-read only when another process replaced it.
      return args[0] === mainPath ? READ : phaseOfPath(args[0]);
    case 'rename':
    case 'link':
    case 'readdir':
      return CHECKPOINT;
    case 'unlink':
    case 'mkdir':
      return phaseOfPath(args[0]);
    default: {
      const phase = phaseOfFd.get(args[0]) ?? OTHER_IO;
      return phase === APPEND && method === 'fdatasync' ? SYNC : phase;
    }
  }
}

/**
 * The real file system, every call timed (until the store resumes, as it awaits it) and
 * attributed to a phase.
 */
const timedFileSystem = Object.fromEntries(
  Object.entries(nodeFileSystem).map(([method, call]) => [
    method,
    async (...args) => {
      const phase = phaseOfCall(method, args);
      if (method === 'rename' && args[1] === mainPath) checkpoints++;
      const began = performance.now();
      try {
        const result = await call(...args);
        if (method === 'open') phaseOfFd.set(result, phase);
        return result;
      } finally {
        add(phase, performance.now() - began);
        if (method === 'close') phaseOfFd.delete(args[0]);
      }
    },
  ]),
);

// The prefill is a checkpoint of a full state (FIFO full) with an empty journal behind it.
const prefill = new MetricsStore({ projectName: PROJECT, dir, maxEvents });
await prefill.save(prefilledState(maxEvents));
await prefill.close();

const store = new MetricsStore({ projectName: PROJECT, dir, maxEvents, fileSystem: timedFileSystem });
// The first update reads the snapshot, sweeps temp files and opens the kept descriptors; a few
// more let the JIT settle.
const WARMUP = 5;
for (let seq = 0; seq < WARMUP; seq++) {
  await store.update((state) => applyEvent(state, makeEvent(seq), maxEvents));
}
spent.clear();
checkpoints = 0;
// Without the reserve: the NUL bytes after the lines, kept for the next ones.
const journalBytes = () => linesEnd(readFileSync(journalPath));
const journalBefore = journalBytes();

let totalMs = 0;
let mutateMs = 0;
for (let seq = WARMUP; seq < WARMUP + ops; seq++) {
  const event = makeEvent(seq);
  const began = performance.now();
  await store.update((state) => {
    const mutateBegan = performance.now();
    applyEvent(state, event, maxEvents);
    mutateMs += performance.now() - mutateBegan;
  });
  totalMs += performance.now() - began;
}
const checkpointsDuringUpdates = checkpoints;
const lineBytes = (journalBytes() - journalBefore) / ops;

const perOp = (ms) => ms / ops;
const phases = FILE_PHASES.map((name) => ({ name, ms: perOp(spent.get(name) ?? 0) }));
phases.push({ name: MUTATOR, ms: perOp(mutateMs) });
const attributed = phases.reduce((sum, phase) => sum + phase.ms, 0);
phases.push({ name: REST, ms: perOp(totalMs) - attributed });

// close(): the final checkpoint (the snapshot of the whole state, written in pieces, fsynced,
// linked and renamed), then the kept descriptors closed.
spent.clear();
const closeBegan = performance.now();
await store.close();
const closeMs = performance.now() - closeBegan;
const closeFileSystemMs = [...spent.values()].reduce((sum, ms) => sum + ms, 0);
const closeCheckpoint = {
  ms: closeMs,
  fileSystemMs: closeFileSystemMs,
  // Mostly the snapshot text (JSON of every event kept), made between the writes of its pieces.
  cpuMs: closeMs - closeFileSystemMs,
};

process.stdout.write(
  `${JSON.stringify({
    result: {
      maxEvents,
      ops,
      totalMs: perOp(totalMs),
      stateBytes: statSync(mainPath).size,
      lineBytes,
      checkpointsDuringUpdates,
      phases,
      closeCheckpoint,
    },
  })}\n`,
);
