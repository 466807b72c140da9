import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsError } from '../../src/errors.js';
import { createEmptyState } from '../../src/model/state.js';
import type { DashboardState } from '../../src/model/types.js';
import type { FileSystem } from '../../src/store/file-system.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { asCalled, FaultyFileSystem } from '../helpers/faulty-fs.js';
import { tempDir } from '../helpers/temp-dir.js';
import { applyStep } from './sequence.js';
import { reportScenario, size, Violations } from './torture-mode.js';

/**
 * I/O errors, SQLite-style (issue 4, part 2): the Nth file-system call of an operation fails with
 * EIO, ENOSPC, EACCES or EPERM, once or from then on, for N = 1, 2, … until the operation runs
 * without meeting a fault. Operations: update() of a project, save() by a fresh store, the first
 * update() of a project whose folder does not exist yet, and load() recovering a corrupt main file.
 *
 * After each: a failure is a MetricsError with a code; a success means every step that makes the
 * write durable succeeded (no fsync failed, the main file was renamed into place and its folder
 * fsynced) and the new state is on disk; a failure leaves the previous state loadable (or the new
 * one, if the main file was already renamed into place); the corrupt evidence is kept; no temp
 * file is left unless the fault hit its removal, and then the next write sweeps it; no file is
 * fsynced twice (a failed fsync is never retried).
 */

const CODES = ['EIO', 'ENOSPC', 'EACCES', 'EPERM'] as const;
const ERROR_CODES = new Set(['E_IO', 'E_LOCK_TIMEOUT', 'E_INVALID_STATE']);
const MAX_CALLS = 200;
const CORRUPT = Buffer.from('{"version": 1, "project_name": "torture", "creat');

type Operation = 'update' | 'save' | 'first-update' | 'recover';

interface LoggedCall {
  method: keyof FileSystem;
  args: unknown[];
  ok: boolean;
  result?: unknown;
}

/** Logs every call with its outcome (the faulty layer below decides the outcome). */
function logged(inner: FileSystem): { fs: FileSystem; log: LoggedCall[] } {
  const log: LoggedCall[] = [];
  const fs = {} as Record<keyof FileSystem, unknown>;
  for (const method of Object.keys(inner) as (keyof FileSystem)[]) {
    fs[method] = async (...args: unknown[]) => {
      const entry: LoggedCall = { method, args: asCalled(args), ok: false };
      log.push(entry);
      const result = await (inner[method] as (...a: unknown[]) => Promise<unknown>)(...args);
      entry.ok = true;
      entry.result = result;
      return result;
    };
  }
  return { fs: fs as unknown as FileSystem, log };
}

function generation(n: number): DashboardState {
  const state = createEmptyState('torture', new Date('2026-01-01T00:00:00.000Z'));
  for (let i = 0; i < n; i++) applyStep(state);
  return state;
}

const bytesOf = (state: DashboardState) => Buffer.from(`${JSON.stringify(state, null, 2)}\n`);

/** Lays out the project the operation starts from: main = generation 2, .bak = generation 1. */
function prepare(root: string, name: string, operation: Operation): string {
  const dir = join(root, name, 'project');
  if (operation === 'first-update') return dir;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, '.agent_metrics.json'), operation === 'recover' ? CORRUPT : bytesOf(generation(2)));
  writeFileSync(join(dir, '.agent_metrics.json.bak'), bytesOf(generation(1)));
  return dir;
}

function run(operation: Operation, store: MetricsStore): Promise<DashboardState> {
  if (operation === 'save') return store.save(generation(3));
  if (operation === 'recover') return store.load();
  return store.update(applyStep);
}

/** total_sessions before and after the operation: what a later load may find. */
const OUTCOMES: Record<Operation, { before: number; after: number }> = {
  update: { before: 2, after: 3 },
  save: { before: 2, after: 3 },
  'first-update': { before: 0, after: 1 },
  recover: { before: 1, after: 1 },
};

const tempFiles = (dir: string) =>
  existsSync(dir) ? readdirSync(dir).filter((n) => n.includes('.tmp-')) : [];

interface Figures {
  runs: number;
  faults: number;
  rejected: number;
  absorbed: number;
  leftTemps: number;
}

/** Checks one faulted run; returns whether a fault was met at all (else the sweep over N is done). */
async function faultOnce(
  root: string,
  operation: Operation,
  code: string,
  persistent: boolean,
  n: number,
  figures: Figures,
  violations: Violations,
): Promise<boolean> {
  const context = `${operation} ${code} ${persistent ? 'from' : 'at'} call ${n}`;
  const dir = prepare(root, `${operation}-${code}-${persistent}-${n}`, operation);
  const faulty = new FaultyFileSystem();
  const { fs, log } = logged(faulty.fs);
  const store = new MetricsStore({ projectName: 'torture', dir, fileSystem: fs, lockTimeoutMs: 5_000 });
  const metricsPath = join(dir, '.agent_metrics.json');
  faulty.arm({ failAt: n, code, persistent });
  const outcome = await run(operation, store).then(
    (state) => ({ ok: true as const, state }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  const injected = faulty.injected;
  faulty.arm(undefined);
  figures.runs += 1;
  figures.faults += injected;

  // Which essential steps went through, from the log.
  const openedAt = new Map<number, number>(); // fd → index of the open() that returned it
  const fsyncsPerOpen = new Map<number, number>();
  const pathOfOpen = new Map<number, string>();
  let mainRenamed = false;
  let folderFsyncedAfterRename = false;
  let fsyncFailed = false;
  let unlinkFailed = false;
  log.forEach((call, index) => {
    if (call.method === 'open' && call.ok) {
      openedAt.set(call.result as number, index);
      pathOfOpen.set(index, call.args[0] as string);
    }
    if (call.method === 'fsync') {
      const opened = openedAt.get(call.args[0] as number) ?? -1;
      fsyncsPerOpen.set(opened, (fsyncsPerOpen.get(opened) ?? 0) + 1);
      if (!call.ok) fsyncFailed = true;
      if (call.ok && mainRenamed && pathOfOpen.get(opened) === dir) folderFsyncedAfterRename = true;
    }
    if (call.method === 'rename' && call.ok && call.args[1] === metricsPath) mainRenamed = true;
    if (call.method === 'unlink' && !call.ok) unlinkFailed = true;
  });
  for (const [opened, count] of fsyncsPerOpen) {
    violations.check(count <= 1, () => `${context}: ${pathOfOpen.get(opened)} fsynced ${count} times`);
  }

  const expected = OUTCOMES[operation];
  if (outcome.ok) {
    if (injected > 0) figures.absorbed += 1;
    violations.check(!fsyncFailed, () => `${context}: resolved although an fsync failed`);
    violations.check(
      mainRenamed && folderFsyncedAfterRename,
      () => `${context}: resolved without renaming the main file into place and fsyncing its folder`,
    );
    violations.check(
      outcome.state.total_sessions === expected.after,
      () => `${context}: resolved with ${outcome.state.total_sessions}`,
    );
  } else {
    figures.rejected += 1;
    const error = outcome.error;
    violations.check(
      error instanceof MetricsError && ERROR_CODES.has(error.code),
      () => `${context}: rejected with an uncoded error: ${String(error)}`,
    );
    violations.check(injected > 0, () => `${context}: rejected without a fault: ${String(error)}`);
  }

  // Temp files: only when removing one was itself failed.
  const temps = tempFiles(dir);
  figures.leftTemps += temps.length;
  violations.check(temps.length === 0 || unlinkFailed, () => `${context}: temp files left: ${temps}`);

  // The corrupt evidence is kept, wherever recovery got to.
  if (operation === 'recover') {
    const kept = readdirSync(dir)
      .filter((name) => name === '.agent_metrics.json' || name.includes('.corrupt-'))
      .some((name) => readFileSync(join(dir, name)).equals(CORRUPT));
    violations.check(kept, () => `${context}: the corrupt main file is gone`);
  }

  // A fault-free store finds the previous state, or the new one if the main file was replaced.
  const healthy = new MetricsStore({ projectName: 'torture', dir });
  try {
    const after = (await healthy.load()).total_sessions;
    const allowed = mainRenamed || outcome.ok ? [expected.after] : [expected.before];
    violations.check(allowed.includes(after), () => `${context}: loads ${after}, expected ${allowed}`);
    // …and the next write works and sweeps whatever temp file the fault left.
    await healthy.update(applyStep);
    const swept = tempFiles(dir);
    violations.check(swept.length === 0, () => `${context}: temp files survive the next write: ${swept}`);
  } catch (error) {
    violations.add(`${context}: the project does not load or update after the fault: ${String(error)}`);
  }
  return injected > 0;
}

describe('torture: injected I/O errors', () => {
  it(
    'fails the Nth call of each operation with each errno, once and persistently',
    async () => {
      const root = tempDir('torture-faults-');
      const figures: Figures = { runs: 0, faults: 0, rejected: 0, absorbed: 0, leftTemps: 0 };
      const violations = new Violations();
      const codes = size<readonly string[]>(['EIO', 'EPERM'], CODES);
      for (const operation of ['update', 'save', 'first-update', 'recover'] as const) {
        for (const code of codes) {
          for (const persistent of [false, true]) {
            for (let n = 1; ; n++) {
              if (!(await faultOnce(root, operation, code, persistent, n, figures, violations))) break;
              if (n >= MAX_CALLS) {
                violations.add(`${operation} ${code}: still meets a fault at call ${n}`);
                break;
              }
            }
          }
        }
      }
      reportScenario('fault-injection', {
        runs: figures.runs,
        faults_injected: figures.faults,
        rejected_with_code: figures.rejected,
        absorbed: figures.absorbed,
        temp_files_left_by_failed_unlink: figures.leftTemps,
        violations: violations.list.length,
      });
      expect(violations.first).toEqual([]);
    },
    size(120_000, 600_000),
  );
});
