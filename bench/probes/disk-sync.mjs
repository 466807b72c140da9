// How long fdatasync takes on this disk for the journal's pattern, and what changes it.
//   node bench/probes/disk-sync.mjs [--dir=/tmp] [--rounds=6] [--ops=300]
// Variants run interleaved, `rounds` times each; prints the median time of one fdatasync (ms).
// - append: a 2 KB line appended, then fdatasync (what the journal does);
// - prealloc: the same bytes written over a file filled with zeros and fsynced beforehand
//   (no size change, so no metadata to flush);
// - "+ gap": 0.3 ms of CPU between syncs, as a recorded event spends between two appends;
// - "+ stat": a stat of the file before each write (what a writer did to see whether another
//   process had replaced or grown it; on Linux ≥ 6.13 reading a file's times makes its next write
//   update them, see src/store/journal-watch.ts); "+ stat other" stats another file instead;
//   "+ read" reads 2 bytes of the file (what a writer under a lease does instead).
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
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
  'prealloc + gap + stat': { prealloc: true, gapMs: 0.3, stat: 'self' },
  'prealloc + gap + stat other': { prealloc: true, gapMs: 0.3, stat: 'other' },
  'prealloc + gap + read': { prealloc: true, gapMs: 0.3, read: true },
};
const probe = Buffer.alloc(2);
const other = join(dir, 'other');
writeFileSync(other, 'x');
const results = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));

for (let round = 0; round < rounds; round++) {
  for (const [name, variant] of Object.entries(variants)) {
    const path = join(dir, `journal-${round}`);
    const fd = openSync(path, 'w+');
    if (variant.prealloc) {
      const zeros = Buffer.alloc(ops * line.length + 4096);
      writeSync(fd, zeros, 0, zeros.length, 0);
      fsyncSync(fd);
    }
    let syncing = 0;
    for (let op = 0; op < ops; op++) {
      if (variant.gapMs > 0) spin(variant.gapMs);
      if (variant.stat) statSync(variant.stat === 'self' ? path : other);
      if (variant.read && op > 0) readSync(fd, probe, 0, 2, op * line.length - 1);
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
    `${name.padEnd(28)} fdatasync median ${median.toFixed(3)} ms  (${times.map((t) => t.toFixed(2)).join(' ')})`,
  );
}
