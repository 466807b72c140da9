// Peak RSS of a process that loads a project holding 50,000 events and records 2,000 more.
// Run `npm run build` first.   node bench/probes/load-memory.mjs [--events=50000]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentMetrics, MetricsStore } from '../../dist/index.js';
import { prefilledState } from '../workload.mjs';

const events = Number(process.argv.find((a) => a.startsWith('--events='))?.split('=')[1] ?? 50_000);
const mb = (bytes) => `${(bytes / 1e6).toFixed(0)} MB`;

if (process.argv[2] === 'child') {
  const dir = process.argv[3];
  const report = (when) => {
    const { rss, heapUsed } = process.memoryUsage();
    console.log(
      `${when.padEnd(22)} rss ${mb(rss)}, heap ${mb(heapUsed)}, peak rss ${mb(process.resourceUsage().maxRSS * 1024)}`,
    );
  };
  report('start');
  const store = new MetricsStore({ projectName: 'bench', dir, maxEvents: events });
  const metrics = new AgentMetrics({ store, strict: true });
  await store.update(() => {});
  report('after the load');
  for (let i = 0; i < 2000; i++)
    await metrics.recordEvent({ agentName: 'bench', status: 'success', inputTokens: 10 });
  report('after 2,000 events');
  await store.close();
  report('after close()');
} else {
  const dir = mkdtempSync(join(tmpdir(), 'load-memory-'));
  const store = new MetricsStore({ projectName: 'bench', dir, maxEvents: events });
  await store.save(prefilledState(events));
  await store.close();
  console.log(`state file ${mb(statSync(join(dir, '.agent_metrics.json')).size)} with ${events} events`);
  // A fresh process, so that the peak is the load's and not the prefill's.
  spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'child', dir, `--events=${events}`], {
    stdio: 'inherit',
  });
  rmSync(dir, { recursive: true, force: true });
}
