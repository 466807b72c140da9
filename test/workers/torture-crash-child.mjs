// Crash-loop worker. Performs updates on the project in `dir`; each update adds the next step of a
// known sequence (see step()), and its number is written to stdout (`ack <n>`) only after update()
// resolved: the parent checks every acknowledged number survives the SIGKILL it sends. With
// `operations`, each update is instead `recordEvent` of event n (journaled as an operation line),
// numbered on from the agent's invocations at start: one worker per project only.
//
// With `killAtCall` k > 0, update number `warmup + 1` counts its file-system calls and the worker
// SIGKILLs itself right before (or after) call k: a crash inside each step of the write protocol.
// With k = 0 it reports `calls <n> <method,…>` for that update instead (the parent's probe).
import { writeSync } from 'node:fs';
import { MetricsStore } from '../../dist/index.js';
import { nodeFileSystem } from '../../dist/store/file-system.js';

const config = JSON.parse(process.argv[2]);
const { dir, warmup = 0, killWhen = 'before', updates = Number.POSITIVE_INFINITY, killAtAnyCall } = config;
// killAtAnyCall: count every call from the start, across updates, and die at that one.
const killAtCall = killAtAnyCall ?? config.killAtCall ?? -1;

const say = (line) => writeSync(1, `${line}\n`);
const die = () => process.kill(process.pid, 'SIGKILL');

let armed = killAtAnyCall !== undefined;
const methods = [];
const fileSystem = {};
for (const [name, call] of Object.entries(nodeFileSystem)) {
  fileSystem[name] = async (...args) => {
    // Calls made while not armed are never a kill point (killAtCall is ≥ 1 when set).
    const index = armed ? methods.push(name) : 0;
    if (index > 0 && index === killAtCall && killWhen === 'before') die();
    try {
      return await call.apply(nodeFileSystem, args);
    } finally {
      // After the call settled, whether it succeeded or not (ENOENT is part of the protocol).
      if (index > 0 && index === killAtCall && killWhen === 'after') die();
    }
  };
}

const store = new MetricsStore({
  projectName: 'torture',
  dir,
  maxEvents: config.maxEvents,
  lockTimeoutMs: 60_000,
  checkpointIdleMs: 0,
  // The store's default lease unless the parent sets one (0: the lock is taken for every update).
  ...(config.leaseMs !== undefined && { lockLeaseMs: config.leaseMs }),
  fileSystem,
});

/** Event n of the sequence: n tokens, id `t-<n>`. */
function eventOf(n) {
  const now = new Date().toISOString();
  return {
    event_id: `t-${n}`,
    agent_name: 'torture',
    session_id: `pid-${process.pid}`,
    ticket_key: '',
    started_at: now,
    ended_at: now,
    duration_seconds: 0,
    status: 'success',
    input_tokens: n,
    output_tokens: 0,
    total_tokens: n,
    estimated_cost_usd: 0,
    artifacts: [],
    error_message: '',
    model_used: 'none',
  };
}

/** Update n adds n to total_tokens and event `t-<n>`: any prefix of the sequence is recognisable. */
function step(state) {
  const n = state.total_sessions + 1;
  state.total_sessions = n;
  state.total_tokens += n;
  state.events.push(eventOf(n));
}

let recorded = config.operations ? ((await store.load()).agents.torture?.total_invocations ?? 0) : 0;
/** One update of the sequence; resolves to its number once acknowledged. */
async function next() {
  if (!config.operations) return (await store.update(step)).total_sessions;
  recorded += 1;
  await store.recordEvent(eventOf(recorded));
  return recorded;
}

say('ready');
for (let i = 0; i < updates; i++) {
  if (killAtAnyCall === undefined) armed = i === warmup && killAtCall >= 0;
  say(`ack ${await next()}`);
  // Fold the journal into the JSON file too, so that kills also land inside checkpoints.
  if (config.checkpoint) await store.checkpoint();
  if (armed && killAtAnyCall === undefined) {
    armed = false;
    say(`calls ${methods.length} ${methods.join(',')}`);
  }
}
say('done');
