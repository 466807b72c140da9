// How long fdatasync takes on this disk for the journal's pattern, and what changes it.
//   node bench/probes/disk-sync.mjs [--dir=/tmp] [--rounds=6] [--ops=300]
// Variants run interleaved, `rounds` times each; prints the median time of one fdatasync (ms).
// - append: a 2 KB line appended, then fdatasync (what the journal does);
// - prealloc: the same bytes written over a file filled with zeros and fsynced beforehand
//   (no size change, so no metadata to flush);
// - "+ gap": 0.3 ms of CPU between syncs, as a recorded event spends between two appends.
import { closeSync, fdatasyncSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const arg = (name, fallback) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const dir = mkdtempSync(join(arg('dir', '/tmp'), 'disk-sync-'));
const rounds = Number(arg('rounds', 6));
const ops = Number(arg('ops', 300));
const line = Buffer.alloc(2048, 97);

const spin = (ms) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

const variants = {
  append: { prealloc: false, gapMs: 0 },
  'append + gap': { prealloc: false, gapMs: 0.3 },
  prealloc: { prealloc: true, gapMs: 0 },
  'prealloc + gap': { prealloc: true, gapMs: 0.3 },
};
const results = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));

for (let round = 0; round < rounds; round++) {
  for (const [name, variant] of Object.entries(variants)) {
    const fd = openSync(join(dir, `journal-${round}`), 'w+');
    if (variant.prealloc) {
      const zeros = Buffer.alloc(ops * line.length + 4096);
      writeSync(fd, zeros, 0, zeros.length, 0);
      fsyncSync(fd);
    }
    let syncing = 0;
    for (let op = 0; op < ops; op++) {
      if (variant.gapMs > 0) spin(variant.gapMs);
      writeSync(fd, line, 0, line.length, op * line.length);
      const started = performance.now();
      fdatasyncSync(fd);
      syncing += performance.now() - started;
    }
    results[name].push(syncing / ops);
    closeSync(fd);
  }
}
rmSync(dir, { recursive: true, force: true });
for (const [name, times] of Object.entries(results)) {
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(
    `${name.padEnd(16)} fdatasync median ${median.toFixed(3)} ms  (${times.map((t) => t.toFixed(2)).join(' ')})`,
  );
}
