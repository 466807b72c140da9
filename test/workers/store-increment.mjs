// Worker: `count` read-modify-write updates, each adding 1 to total_sessions and to this worker's
// own counter (an extra root key), so lost updates show up in both totals.
import { MetricsStore } from '../../dist/index.js';

const [dir, count, name] = process.argv.slice(2);
const store = new MetricsStore({ projectName: 'concurrency', dir, lockTimeoutMs: 60_000 });
for (let i = 0; i < Number(count); i++) {
  await store.update((state) => {
    state.total_sessions += 1;
    const counters = state.per_worker ?? {};
    counters[name] = (counters[name] ?? 0) + 1;
    state.per_worker = counters;
  });
}
console.log('done');
