// Worker: takes the store's lock (inside an update that adds 1 to total_sessions, so a later
// holder can tell it ran after this one), prints "locked <pid>", and holds it until its stdin
// closes or it is killed.
import { MetricsStore } from '../../dist/index.js';

const [dir] = process.argv.slice(2);
const store = new MetricsStore({ projectName: 'lock', dir });
await store.update(async (state) => {
  console.log(`locked ${process.pid}`);
  await new Promise((resolve) => {
    process.stdin.on('end', resolve);
    process.stdin.resume();
  });
  state.total_sessions += 1;
});
console.log('released');
