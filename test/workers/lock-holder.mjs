// Worker: takes the store's lock (inside an update), prints "locked <pid>", and holds it until its
// stdin closes or it is killed.
import { MetricsStore } from '../../dist/index.js';

const [dir] = process.argv.slice(2);
const store = new MetricsStore({ projectName: 'lock', dir });
await store.update(async () => {
  console.log(`locked ${process.pid}`);
  await new Promise((resolve) => {
    process.stdin.on('end', resolve);
    process.stdin.resume();
  });
});
console.log('released');
