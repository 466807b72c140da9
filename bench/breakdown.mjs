// Where the time of one MetricsStore.update() goes, by phase, for one state size (own process).
//   node bench/breakdown.mjs '{"dir": "...", "maxEvents": 500, "ops": 50}'
// File-system phases are timed through the store's injectable FileSystem (each call attributed
// by the file it touches), parse and serialize by wrapping JSON.parse / JSON.stringify /
// TextDecoder.decode, validation by wrapping the root schema's safeParse; the rest of the measured
// total is reported as "other".
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { METRICS_FILE, MetricsStore, nodeFileSystem, validateState } from '../dist/index.js';
import { applyEvent, makeEvent, PROJECT, prefilledState } from './workload.mjs';

const { dir, maxEvents, ops } = JSON.parse(process.argv[2]);
const mainPath = join(dir, METRICS_FILE);
const lockPath = join(dir, '.agent_metrics.lock');

const LOCK = 'lock (open, flock, check, pid, close)';
const spent = new Map();
const add = (phase, ms) => spent.set(phase, (spent.get(phase) ?? 0) + ms);
const phaseOfFd = new Map();

function phaseOfPath(path, mode) {
  if (path === lockPath) return LOCK;
  if (mode === 'read') return 'fsync folder';
  if (path.startsWith(`${mainPath}.tmp-`)) return 'write temp file (open, chmod, write, close)';
  if (path.startsWith(`${mainPath}.bak`) || path === mainPath) return 'backup (stat, link, rename)';
  return 'other file-system calls';
}

function phaseOfCall(method, args) {
  if (method === 'readFile') return args[0] === mainPath ? 'read file' : phaseOfPath(args[0]);
  if (method === 'readdir') return 'sweep temp files (readdir)';
  if (method === 'rename' && args[1] === mainPath) return 'rename';
  if (['stat', 'link', 'rename', 'unlink', 'mkdir'].includes(method)) return phaseOfPath(args[0]);
  const phase = phaseOfFd.get(args[0]) ?? 'other file-system calls';
  if (method === 'fsync' && phase.startsWith('write temp file')) return 'fsync file';
  return phase;
}

/** The real file system, with every call timed and attributed to a phase. */
const timedFileSystem = Object.fromEntries(
  Object.entries(nodeFileSystem).map(([method, call]) => [
    method,
    async (...args) => {
      const began = performance.now();
      const phase = method === 'open' ? phaseOfPath(args[0], args[1]) : phaseOfCall(method, args);
      try {
        const result = await call(...args);
        if (method === 'open') phaseOfFd.set(result, phase);
        return result;
      } finally {
        add(phase, performance.now() - began);
      }
    },
  ]),
);

await new MetricsStore({ projectName: PROJECT, dir, maxEvents }).save(prefilledState(maxEvents));
const store = new MetricsStore({ projectName: PROJECT, dir, maxEvents, fileSystem: timedFileSystem });
await store.update((state) => applyEvent(state, makeEvent(0), maxEvents)); // warm-up
spent.clear();

// JSON.parse, JSON.stringify and TextDecoder.decode are what the store calls to parse and
// serialize; timing them here times them inside the store, on its own data.
function timed(owner, name, phase) {
  const original = owner[name];
  owner[name] = function (...args) {
    const began = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      add(phase, performance.now() - began);
    }
  };
}
timed(JSON, 'parse', 'parse');
timed(TextDecoder.prototype, 'decode', 'parse');
timed(JSON, 'stringify', 'serialize');
// Validation is timed in situ when the root schema has a safeParse method (it had with zod); with
// valibot (a function, not a method) it is timed apart below.
const { dashboardStateSchema } = await import('../dist/model/schema.js').catch(() => ({}));
const validateInSitu = typeof dashboardStateSchema?.safeParse === 'function';
if (validateInSitu) timed(dashboardStateSchema, 'safeParse', 'validate');

const perOpOf = (ms) => ms / ops;
let totalMs = 0;
let mutateMs = 0;
for (let seq = 1; seq <= ops; seq++) {
  const event = makeEvent(seq);
  const began = performance.now();
  await store.update((state) => {
    const mutateBegan = performance.now();
    applyEvent(state, event, maxEvents);
    mutateMs += performance.now() - mutateBegan;
  });
  totalMs += performance.now() - began;
}

// Without the schema hook (the store was reorganised), validation is timed apart on the same state.
const bytes = readFileSync(mainPath);
let validateMs = perOpOf(spent.get('validate') ?? 0);
if (!validateInSitu) {
  const state = JSON.parse(bytes.toString('utf8'));
  const validateBegan = performance.now();
  for (let i = 0; i < ops; i++) validateState(state);
  validateMs = (2 * (performance.now() - validateBegan)) / ops;
}

const phases = [LOCK, 'read file'].map((name) => ({ name, ms: perOpOf(spent.get(name) ?? 0) }));
phases.push({ name: 'parse (utf-8 decode + JSON.parse)', ms: perOpOf(spent.get('parse') ?? 0) });
phases.push({ name: 'validate (schema), twice: on load and before save', ms: validateMs });
phases.push({ name: 'mutate (append, counters)', ms: perOpOf(mutateMs) });
phases.push({ name: 'serialize (JSON.stringify, 2-space indent)', ms: perOpOf(spent.get('serialize') ?? 0) });
for (const name of [
  'sweep temp files (readdir)',
  'backup (stat, link, rename)',
  'write temp file (open, chmod, write, close)',
  'fsync file',
  'rename',
  'fsync folder',
  'other file-system calls',
]) {
  phases.push({ name, ms: perOpOf(spent.get(name) ?? 0) });
}
const attributed = phases.reduce((sum, phase) => sum + phase.ms, 0);
phases.push({ name: 'other (event loop, FIFO eviction, copies)', ms: perOpOf(totalMs) - attributed });

process.stdout.write(
  `${JSON.stringify({ result: { maxEvents, ops, totalMs: perOpOf(totalMs), stateBytes: bytes.length, phases } })}\n`,
);
