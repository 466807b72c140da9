// RSS and V8's heap spaces of a process that only records (`AgentMetrics.recordEvent()`, the
// benchmark's event, 500 events kept): 3,000 sequential events, then 17,000 from 64 callers.
// What a process takes with almost no events kept: the floor under the memory target.
// Run `npm run build` first.   node bench/probes/record-memory.mjs
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { eventInput } from '../workload.mjs';

const { AgentMetrics, MetricsStore } = await import('../../dist/index.js');
const mb = (bytes) => `${(bytes / 1e6).toFixed(0)} MB`;
const report = (when) => {
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((space) => [space.space_name, space]));
  console.log(
    `${when.padEnd(26)} rss ${mb(process.memoryUsage().rss)}, young generation ${mb(spaces.new_space.space_size)}, ` +
      `old generation ${mb(spaces.old_space.space_size)}, peak rss ${mb(process.resourceUsage().maxRSS * 1024)}`,
  );
};
const dir = mkdtempSync(join(tmpdir(), 'record-memory-'));
const store = new MetricsStore({ projectName: 'bench', dir, maxEvents: 500 });
const metrics = new AgentMetrics({ store, strict: true });
report('start');
let seq = 0;
for (let i = 0; i < 3000; i++) await metrics.recordEvent(eventInput(seq++));
report('3,000 sequential events');
const caller = async () => {
  while (seq < 20_000) await metrics.recordEvent(eventInput(seq++));
};
await Promise.all(Array.from({ length: 64 }, caller));
report('then 17,000 from 64 callers');
await store.close();
rmSync(dir, { recursive: true, force: true });
