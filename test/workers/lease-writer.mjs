// Worker: updates the store in `dir` back to back (each adds 1 to total_sessions), so that it keeps
// the lock under its lease, until a file named `stop` appears in `dir` or its parent process ends
// (both looked for synchronously: letting the event loop turn would end the lease). Prints "writing" after the first update, then
// "wrote <n>" at the end.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MetricsStore } from '../../dist/index.js';

const [dir] = process.argv.slice(2);
const store = new MetricsStore({ projectName: 'lease', dir });
const stop = join(dir, 'stop');
// A test that failed before writing `stop` must not leave this loop running: it also ends when
// the test process is gone (this one is then another process's child).
const parent = process.ppid;
let count = 0;
while (!existsSync(stop) && process.ppid === parent) {
  await store.update((state) => {
    state.total_sessions += 1;
  });
  count += 1;
  if (count === 1) console.log('writing');
}
await store.close();
console.log(`wrote ${count}`);
