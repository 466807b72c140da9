// Markdown output: one line per store and scenario (ready to paste into the README), the issue's
// targets, and the time breakdown of one MetricsStore.update().

const SCENARIOS = {
  seq: '1 process, sequential',
  multi: '8 processes, concurrent',
  callers: '64 callers, 1 process',
  growth: 'cost growth',
};
const PEERS = [
  ['sqlite', '×SQLite'],
  ['append-limit', '×512B limit'],
  ['wfa-lockfile', '×wfa+lockfile'],
  ['lowdb', '×lowdb'],
];

const fixed = (value, digits) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const ops = (value) => {
  if (!Number.isFinite(value)) return '–';
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toPrecision(2);
};

function find(results, scenario, store, maxEvents = 500) {
  return results.find((r) => r.scenario === scenario && r.store === store && r.maxEvents === maxEvents);
}

function notesOf(result, results) {
  const notes = [];
  if (result.rounds > 1) {
    const all = result.opsPerSecRounds;
    notes.push(`median of ${result.rounds} rounds (${ops(Math.min(...all))}–${ops(Math.max(...all))} ops/s)`);
  }
  if (result.scenario === 'callers' && result.callers === 1) notes.push('sync API: run sequentially');
  if (result.scenario === 'growth') {
    const base = find(results, 'growth', result.store, 500);
    const perOp = 1 / result.opsPerSec;
    if (base && base !== result)
      notes.push(`time/op ${fixed(perOp / (1 / base.opsPerSec), 2)}× the 500-event figure`);
    notes.push(
      `file ${fixed(result.stateBytes / 2 ** 20, 1)} MB, RSS/file ${fixed((result.peakRssMb * 2 ** 20) / result.stateBytes, 1)}×`,
    );
  }
  if (result.finalFileUnreadable) notes.push(`final file unreadable (${result.finalFileUnreadable})`);
  for (const [error, count] of Object.entries(result.errors)) notes.push(`${count}× ${error}`);
  return notes.join('; ');
}

export function formatTable(results) {
  const header = [
    'scenario',
    'store',
    'events kept',
    'ops',
    'ops/s',
    'p50 ms',
    'p99 ms',
    'peak RSS MB',
    'lost',
    'failed',
    ...PEERS.map(([, name]) => name),
    'notes',
  ];
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const result of results) {
    const ratios = PEERS.map(([peer]) => {
      const other = find(results, result.scenario, peer, result.maxEvents);
      const ratio = other ? result.opsPerSec / other.opsPerSec : Number.NaN;
      return Number.isFinite(ratio) ? `${fixed(ratio, 2)}×` : '–';
    });
    const cells = [
      SCENARIOS[result.scenario],
      result.label,
      result.maxEvents.toLocaleString('en-US'),
      result.ops,
      ops(result.opsPerSec),
      fixed(result.p50Ms, 2),
      fixed(result.p99Ms, 2),
      fixed(result.peakRssMb, 0),
      result.lost ?? 'n/a',
      result.failedOps,
      ...ratios,
      notesOf(result, results).replaceAll('|', '\\|'),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return [lines.join('\n'), '', formatTargets(results)].join('\n');
}

/** The issue's five targets, for our domain API (`recordEvent`), measured in this run. */
export function formatTargets(results) {
  const ours = (scenario, maxEvents) => find(results, scenario, 'ours-record', maxEvents);
  const sqlite = (scenario) => find(results, scenario, 'sqlite');
  const lines = ['Targets of the issue (ours = AgentMetrics.recordEvent):'];
  const check = (name, met, detail) => lines.push(`- ${met ? 'MET' : 'MISSED'}: ${name}: ${detail}`);
  const seq = [ours('seq'), sqlite('seq')];
  if (seq[0] && seq[1]) {
    const ratio = seq[0].opsPerSec / seq[1].opsPerSec;
    check(
      '1 process ≥ SQLite',
      ratio >= 1,
      `${ops(seq[0].opsPerSec)} vs ${ops(seq[1].opsPerSec)} ops/s = ${fixed(ratio, 3)}×`,
    );
  }
  const multi = [ours('multi'), sqlite('multi')];
  if (multi[0] && multi[1]) {
    const ratio = multi[0].opsPerSec / multi[1].opsPerSec;
    check(
      '8 processes ≥ SQLite, 0 lost',
      ratio >= 1 && multi[0].lost === 0,
      `${ops(multi[0].opsPerSec)} vs ${ops(multi[1].opsPerSec)} ops/s = ${fixed(ratio, 3)}×, ${multi[0].lost} lost`,
    );
  }
  const callers = ours('callers');
  if (callers && seq[1]) {
    const ratio = callers.opsPerSec / seq[1].opsPerSec;
    check(
      '64 callers ≥ 5× SQLite sequential',
      ratio >= 5,
      `${ops(callers.opsPerSec)} vs 5 × ${ops(seq[1].opsPerSec)} ops/s: ${fixed(ratio, 3)}× (needs 5×)`,
    );
  }
  const [small, large] = [ours('growth', 500), ours('growth', 50_000) ?? ours('growth', 5000)];
  if (small && large && large !== small) {
    const ratio = small.opsPerSec / large.opsPerSec;
    check(
      `time/op at ${large.maxEvents.toLocaleString('en-US')} events ≤ 1.5× at 500`,
      ratio <= 1.5,
      `${fixed(1000 / large.opsPerSec, 1)} ms vs ${fixed(1000 / small.opsPerSec, 1)} ms = ${fixed(ratio, 1)}×`,
    );
    const rssRatio = (large.peakRssMb * 2 ** 20) / large.stateBytes;
    check(
      `peak RSS at ${large.maxEvents.toLocaleString('en-US')} events ≤ 3× state file`,
      rssRatio <= 3,
      `${fixed(large.peakRssMb, 0)} MB vs file ${fixed(large.stateBytes / 2 ** 20, 1)} MB = ${fixed(rssRatio, 1)}×`,
    );
  }
  return lines.join('\n');
}

/** What each store does per recording, and so what its figures mean. */
export function formatLegend(results) {
  const seen = new Map(results.map((r) => [r.store, r]));
  return [...seen.values()].map((r) => `- ${r.label}: ${r.description}`).join('\n');
}

export function formatBreakdown(breakdown) {
  const sizes = breakdown.map((entry) => entry.maxEvents);
  const header = [
    'phase of MetricsStore.update()',
    ...sizes.map((n) => `ms/op @${n.toLocaleString('en-US')}`),
  ];
  const phases = breakdown[0].phases.map((phase) => phase.name);
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const name of phases) {
    const cells = breakdown.map((entry) => {
      const phase = entry.phases.find((p) => p.name === name);
      return `${fixed(phase.ms, 2)} (${fixed((100 * phase.ms) / entry.totalMs, 0)} %)`;
    });
    lines.push(`| ${name} | ${cells.join(' | ')} |`);
  }
  lines.push(
    `| **total (measured)** | ${breakdown.map((entry) => `**${fixed(entry.totalMs, 2)}**`).join(' | ')} |`,
  );
  // Once per close(), not per update: outside the total and its percentages.
  if (breakdown.every((entry) => entry.closeCheckpoint)) {
    const close = breakdown.map(
      ({ closeCheckpoint: c }) =>
        `${fixed(c.ms, 1)} ms (file system ${fixed(c.fileSystemMs, 1)}, CPU ${fixed(c.cpuMs, 1)})`,
    );
    lines.push(`| checkpoint by close(), once (not per update) | ${close.join(' | ')} |`);
  }
  lines.push(
    `| state file | ${breakdown.map((entry) => `${fixed(entry.stateBytes / 1024, 0)} KiB`).join(' | ')} |`,
  );
  if (breakdown.every((entry) => entry.lineBytes !== undefined)) {
    const line = breakdown.map((entry) => `${fixed(entry.lineBytes, 0)} B`);
    lines.push(`| journal line per update | ${line.join(' | ')} |`);
  }
  return lines.join('\n');
}
