// Worker: one update() on the store in `dir` (argument 1; lock timeout in ms as argument 2),
// reporting how it got the lock. Prints `contended` when the non-blocking flock found the lock
// taken, `waiting` when it starts the blocking flock, `acquired <process.hrtime ns>` (monotonic,
// comparable across processes) once that flock returns, then `result <json>` with the number of
// each kind of flock call and the total_sessions its update read. On failure: `error <code>`, exit 1.
import { writeSync } from 'node:fs';
import { MetricsStore } from '../../dist/index.js';
import { nodeFileSystem } from '../../dist/store/file-system.js';

const [dir, timeout] = process.argv.slice(2);
const say = (line) => writeSync(1, `${line}\n`);
const result = { tries: 0, blocking: 0, sessionsBefore: -1 };

const fileSystem = {
  ...nodeFileSystem,
  async tryLockExclusive(fd) {
    result.tries += 1;
    const taken = await nodeFileSystem.tryLockExclusive(fd);
    if (!taken && result.tries === 1) say('contended');
    return taken;
  },
  async lockExclusive(fd) {
    result.blocking += 1;
    say('waiting');
    await nodeFileSystem.lockExclusive(fd);
    say(`acquired ${process.hrtime.bigint()}`);
  },
};

const store = new MetricsStore({
  projectName: 'lock',
  dir,
  lockTimeoutMs: Number(timeout ?? 10_000),
  fileSystem,
});
try {
  await store.update((state) => {
    result.sessionsBefore = state.total_sessions;
    state.total_sessions += 1;
  });
  say(`result ${JSON.stringify(result)}`);
} catch (error) {
  say(`error ${error.code}`);
  process.exitCode = 1;
}
