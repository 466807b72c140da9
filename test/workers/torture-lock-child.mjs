// Lock-stress and concurrency worker. Modes (first argument, then a JSON config):
// - stress: update() in a loop for `seconds` (waiting for the lock as `lockWait` says); inside the critical section it creates an
//   exclusive marker file ('wx' fails if another holder made one) and deletes it again. Prints
//   `result <json>` with acknowledged updates, lock timeouts and anything else that went wrong.
// - count: `updates` update()s then `events` AgentMetrics.recordEvent()s; prints `done`.
// - hold: takes the lock and keeps it until killed; prints `holding`.
// - wait: waits for the lock; prints `contended` once a lock attempt found it taken, then
//   `acquired <process.hrtime ns>` (CLOCK_MONOTONIC, comparable across processes) when it got it.
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { AgentMetrics, MetricsStore } from '../../dist/index.js';
import { nodeFileSystem } from '../../dist/store/file-system.js';

const [mode, json] = process.argv.slice(2);
const config = JSON.parse(json);
const say = (line) => writeSync(1, `${line}\n`);

async function stress() {
  // durability 'none': the lock is under test, and fast updates hand it over more often.
  const store = new MetricsStore({
    projectName: 'torture',
    dir: config.dir,
    lockTimeoutMs: config.lockTimeoutMs,
    lockWait: config.lockWait,
    durability: 'none',
  });
  const result = { acked: 0, timeouts: 0, twoHolders: 0, errors: [] };
  const until = Date.now() + config.seconds * 1000;
  while (Date.now() < until) {
    try {
      await store.update(async (state) => {
        let marker;
        try {
          marker = openSync(config.marker, 'wx');
        } catch (error) {
          if (error.code === 'EEXIST') result.twoHolders += 1;
          throw error;
        }
        // Hold the lock for a moment, letting other processes' attempts come in meanwhile.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
        state.total_sessions += 1;
        closeSync(marker);
        unlinkSync(config.marker);
      });
      result.acked += 1;
    } catch (error) {
      if (error.code === 'E_LOCK_TIMEOUT' && error.name === 'LockAcquisitionError') result.timeouts += 1;
      else result.errors.push(`${error.code}: ${error.message}`);
    }
  }
  say(`result ${JSON.stringify(result)}`);
}

async function count() {
  const store = new MetricsStore({ projectName: 'torture', dir: config.dir, lockTimeoutMs: 120_000 });
  for (let i = 0; i < config.updates; i++) {
    await store.update((state) => {
      state.torture_updates = (state.torture_updates ?? 0) + 1;
    });
  }
  const metrics = new AgentMetrics({ store, strict: true });
  for (let i = 0; i < config.events; i++) {
    await metrics.recordEvent({ agentName: config.name, status: 'success', inputTokens: 2, outputTokens: 1 });
  }
  say('done');
}

async function hold() {
  const store = new MetricsStore({ projectName: 'torture', dir: config.dir });
  setInterval(() => undefined, 1 << 30); // stay alive, lock held, until killed
  await store.update(() => {
    say('holding');
    return new Promise(() => undefined);
  });
}

async function wait() {
  let contended = false;
  const fileSystem = {
    ...nodeFileSystem,
    async tryLockExclusive(fd) {
      const taken = await nodeFileSystem.tryLockExclusive(fd);
      if (!taken && !contended) {
        contended = true;
        say('contended');
      }
      if (taken && contended) say(`acquired ${process.hrtime.bigint()}`);
      return taken;
    },
  };
  const store = new MetricsStore({
    projectName: 'torture',
    dir: config.dir,
    lockTimeoutMs: 10_000,
    fileSystem,
  });
  await store.update(() => undefined);
}

await { stress, count, hold, wait }[mode]();
