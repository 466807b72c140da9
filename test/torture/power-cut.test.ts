import { describe, expect, it } from 'vitest';
import type { FileSystem } from '../../src/store/file-system.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import type { MetricsStoreOptions } from '../../src/store/options.js';
import type { RecoveryReport } from '../../src/store/recovery.js';
import { PowerCutFileSystem } from '../helpers/power-cut-fs.js';
import { applyStep, prefixProblem } from './sequence.js';
import { reportScenario, size, Violations } from './torture-mode.js';

/**
 * Lost power (issue 4, part 3). The store runs against PowerCutFileSystem, which keeps whatever
 * was not fsynced only "in the page cache". The power is cut right before each file-system call
 * of a series of updates (a fresh project, steady state, recovery of a corrupt main file), and a
 * new store loads the surviving disk image: every update whose promise resolved before the cut
 * must be there, and the state must be a prefix of the updates.
 *
 * Meta-test: the same check with the folder fsync, or the file fsync, turned into a no-op, or with
 * `durability: 'none'`, must find lost writes; otherwise the check proves nothing.
 */

const DIR = '/disk/projects/demo';
const MAX_EVENTS = 4;
// Updates in each powered run: every call of every one of them gets a cut.
const UPDATES = size(3, 8);

class PowerCut extends Error {
  readonly code = 'EIO';
}

const FILE_SYSTEM_METHODS: readonly (keyof FileSystem)[] = [
  'readFile',
  'open',
  'write',
  'fsync',
  'fdatasync',
  'read',
  'fchmod',
  'ftruncate',
  'fstat',
  'close',
  'tryLockExclusive',
  'lockExclusive',
  'unlock',
  'stat',
  'rename',
  'link',
  'unlink',
  'readdir',
  'mkdir',
];

type Weakening = 'none' | 'no-folder-fsync' | 'no-file-fsync' | 'durability-none';
type Start = 'fresh' | 'steady' | 'recovery';

/**
 * Passes calls through until `cutAt` calls were made; from then on every call fails (the machine
 * is off). `weakening` removes one of the store's fsyncs, for the meta-test.
 */
function switchboard(inner: FileSystem, weakening: Weakening, slowSync = false) {
  let calls = 0;
  let cutAt = Number.POSITIVE_INFINITY;
  let image: PowerCutFileSystem | undefined;
  const disk = inner as PowerCutFileSystem;
  const fs = {} as Record<keyof FileSystem, unknown>;
  for (const method of FILE_SYSTEM_METHODS) {
    fs[method] = async (...args: unknown[]) => {
      calls += 1;
      if (calls >= cutAt) {
        image ??= disk.crashImage();
        throw new PowerCut('power cut');
      }
      if (method === 'fdatasync' && weakening === 'no-file-fsync') return;
      // A disk that takes a moment: the store's next batch is written while this one runs. If the
      // power goes meanwhile, this fdatasync never returns either.
      if (method === 'fdatasync' && slowSync) {
        await new Promise((resolve) => setImmediate(resolve));
        if (image !== undefined) throw new PowerCut('power cut');
      }
      if (method === 'fsync' && weakening !== 'none') {
        const stat = await disk.fstat(args[0] as number);
        const isFolder = (stat.mode & 0o170000) === 0o040000;
        if ((weakening === 'no-folder-fsync' && isFolder) || (weakening === 'no-file-fsync' && !isFolder))
          return;
      }
      return (disk[method] as (...a: unknown[]) => unknown).apply(disk, args);
    };
  }
  return {
    fs: fs as unknown as FileSystem,
    get calls() {
      return calls;
    },
    cutAt(n: number) {
      cutAt = n;
    },
    /** The disk after the cut (or, if the cut never came, after a cut right now). */
    image: () => image ?? disk.crashImage(),
  };
}

function options(fileSystem: FileSystem, extra: Partial<MetricsStoreOptions> = {}): MetricsStoreOptions {
  // Every other update is followed by a checkpoint (see the runs), so cuts land in both protocols.
  return {
    projectName: 'torture',
    dir: DIR,
    maxEvents: MAX_EVENTS,
    fileSystem,
    checkpointIdleMs: 0,
    ...extra,
  };
}

/** A disk holding the project in the state `start` describes, everything on it durable. */
async function prepareDisk(start: Start): Promise<{ disk: PowerCutFileSystem; floor: number }> {
  const disk = new PowerCutFileSystem();
  await disk.mkdir('/disk');
  const rootFd = await disk.open('/', 'read');
  await disk.fsync(rootFd); // `/disk` exists on disk, like any mount point
  await disk.close(rootFd);
  if (start === 'fresh') return { disk, floor: 0 };
  const store = new MetricsStore(options(disk));
  let floor = 0;
  for (let i = 0; i < 2; i++) {
    floor = (await store.update(applyStep)).total_sessions;
    await store.checkpoint(); // the second checkpoint makes the first one the .bak
  }
  if (start === 'recovery') {
    const fd = await disk.open(`${DIR}/.agent_metrics.json`, 'read-write-create');
    await disk.write(fd, Buffer.from('\0\0\0\0'), 0); // NUL-filled, as a torn write may leave it
    await disk.fsync(fd);
    await disk.close(fd);
    floor -= 1; // the corrupted generation is lost by our own hand; the backup's must survive
  }
  return { disk: disk.crashImage(), floor };
}

interface Outcome {
  cuts: number;
  acked: number;
  lost: number;
  violations: Violations;
}

/**
 * Cuts the power before call 1, 2, … of UPDATES updates, and checks each surviving disk. With
 * `callers` > 1, two waves of that many updates at once, on a disk whose fdatasync takes a moment:
 * the store splits each wave into batches and writes one while the previous one's fdatasync runs
 * (pipelined group commit).
 */
async function cutEverywhere(start: Start, weakening: Weakening, callers = 1): Promise<Outcome> {
  const outcome: Outcome = { cuts: 0, acked: 0, lost: 0, violations: new Violations() };
  const durability = weakening === 'durability-none' ? 'none' : 'fsync';
  for (let cutAt = 1; ; cutAt++) {
    const { disk, floor } = await prepareDisk(start);
    const board = switchboard(disk, weakening, callers > 1);
    board.cutAt(cutAt);
    const store = new MetricsStore(options(board.fs, { durability }));
    let acked = floor;
    let failed = false;
    const waves = callers === 1 ? UPDATES : 2;
    for (let i = 0; i < waves && !failed; i++) {
      const wave = Array.from({ length: callers }, () =>
        store.update(applyStep).then(
          (saved) => {
            acked = Math.max(acked, saved.total_sessions);
            outcome.acked += 1;
          },
          () => {
            failed = true;
          },
        ),
      );
      await Promise.all(wave);
      // Every other update is folded into the JSON file, so cuts land inside checkpoints too.
      if (i % 2 === 1 && !failed) {
        await store.checkpoint().catch(() => {
          failed = true;
        });
      }
    }
    const context = `${start}/${weakening}/${callers} caller(s): power cut before call ${cutAt}`;
    const reports: RecoveryReport[] = [];
    const after = new MetricsStore(options(board.image(), { onRecover: (report) => reports.push(report) }));
    try {
      const state = await after.load();
      const problem = prefixProblem(state, MAX_EVENTS);
      outcome.violations.check(problem === undefined, () => `${context}: ${problem}`);
      if (state.total_sessions < acked) {
        outcome.lost += acked - state.total_sessions;
        outcome.violations.add(
          `${context}: acknowledged update ${acked} lost, disk has ${state.total_sessions}`,
        );
      }
      outcome.violations.check(
        state.total_sessions <= acked + callers,
        () => `${context}: disk has ${state.total_sessions} updates, only ${acked} acknowledged`,
      );
    } catch (error) {
      outcome.violations.add(`${context}: load failed: ${(error as Error).message}`);
    }
    if (!failed) break; // the cut came after the last call: every step has been cut
    outcome.cuts += 1;
  }
  return outcome;
}

describe('torture: lost power', () => {
  it(
    'keeps every acknowledged update when the power is cut before any file-system call',
    async () => {
      const totals = { cuts: 0, acked: 0, lost: 0 };
      const violations: string[] = [];
      const runs = [
        ['fresh', 1],
        ['steady', 1],
        ['recovery', 1],
        ['steady', 4], // four callers at once: pipelined batches
      ] as const;
      for (const [start, callers] of runs) {
        const outcome = await cutEverywhere(start, 'none', callers);
        totals.cuts += outcome.cuts;
        totals.acked += outcome.acked;
        totals.lost += outcome.lost;
        violations.push(...outcome.violations.first);
      }
      // The meta-test: each weakened protocol must be caught losing acknowledged updates.
      const caught: string[] = [];
      for (const weakening of ['no-folder-fsync', 'no-file-fsync', 'durability-none'] as const) {
        const outcome = await cutEverywhere('steady', weakening);
        if (outcome.lost > 0) caught.push(weakening);
      }
      reportScenario('power-cut', {
        cuts: totals.cuts,
        acked_checked: totals.acked,
        lost: totals.lost,
        meta_weakenings_caught: `${caught.length}/3`,
        violations: violations.length,
      });
      expect(violations).toEqual([]);
      expect(caught).toEqual(['no-folder-fsync', 'no-file-fsync', 'durability-none']);
    },
    size(60_000, 600_000),
  );
});
