import { readdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import {
  BACKUP_FILE,
  type Caps,
  capsFor,
  checkInvariants,
  type DashboardState,
  type FileSystem,
  isLeftoverTempFile,
  JOURNAL_FILE,
  type JournalCheck,
  METRICS_FILE,
  nodeFileSystem,
  readGeneration,
  StorageIOError,
  type ValidationIssue,
} from '../index.js';

/**
 * Read-only look at a project's files, for `verify` and `repair --dry-run`: never locks, never
 * writes, never recovers (the store's `load()` would repair what it reads).
 *
 * - `missing`: no such file.
 * - `corrupt`: `readGeneration` (what `load()` uses) rejects it; the store would move it aside.
 * - `valid`: the store would use it; `issues` are broken invariants, which no recovery changes.
 */
export type FileCheck =
  | { kind: 'missing' }
  | { kind: 'corrupt'; issues: ValidationIssue[] }
  | { kind: 'valid'; state: DashboardState; issues: ValidationIssue[] };

/**
 * Judges the file exactly as the store does (`readGeneration`, what `load()` reads it with: in
 * pieces, so that a large file's bytes, text and state are not all in memory at once), then
 * checks the invariants of a valid one against the caps a store without caps would apply to it
 * (`capsFor`: the file's `retention`, else the defaults), unless `explicit` caps are given.
 * Throws E_IO when the file exists but cannot be read.
 */
export async function checkFile(
  path: string,
  explicit: Partial<Caps> = {},
  fileSystem: FileSystem = nodeFileSystem,
): Promise<FileCheck> {
  const generation = await readGeneration(fileSystem, path);
  if (generation.kind === 'missing') return { kind: 'missing' };
  if (generation.kind === 'invalid') return { kind: 'corrupt', issues: generation.issues };
  const { state } = generation;
  // Always explicit: checkInvariants has its own defaults, which know nothing of `retention`.
  return { kind: 'valid', state, issues: checkInvariants(state, capsFor(state, explicit)) };
}

export interface ProjectFiles {
  dir: string;
  mainPath: string;
  backupPath: string;
  /** The journal of changes not yet folded into the main file (see `checkJournal`). */
  journalPath: string;
  /** Corrupt files moved aside by recovery (`.corrupt-<time>`), oldest first. */
  quarantined: string[];
  /** Temp files of writers that are gone (crashed or failed); a live writer's are not listed. */
  temp: string[];
}

/** The project's files by name; a missing folder has none. */
export async function listProjectFiles(dir: string): Promise<ProjectFiles> {
  const absolute = resolve(dir);
  let names: string[] = [];
  try {
    names = (await readdir(absolute)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new StorageIOError('list', absolute, error);
  }
  // Names of the JSON file's and the journal's generations (`.agent_metrics.json…`, `.agent_metrics.journal…`).
  const ours = (marker: string) =>
    names
      .filter(
        (name) => (name.startsWith(METRICS_FILE) || name.startsWith(JOURNAL_FILE)) && name.includes(marker),
      )
      .map((name) => join(absolute, name));
  return {
    dir: absolute,
    mainPath: join(absolute, METRICS_FILE),
    backupPath: join(absolute, BACKUP_FILE),
    journalPath: join(absolute, JOURNAL_FILE),
    quarantined: ours('.corrupt-'),
    // As the next write's sweep sees them: a live writer's temp file is its own.
    temp: ours('.tmp-').filter((path) => isLeftoverTempFile(absolute, basename(path))),
  };
}

/** `count` change lines, in words. */
export function changeLines(count: number): string {
  return `${count} change line${count === 1 ? '' : 's'}`;
}

/**
 * What a journal that does not continue the main file holds, in words (its change lines, and the
 * complete lines of its torn end); undefined when it holds nothing, and the next write replaces it.
 */
export function foreignJournalHolds(check: JournalCheck): string | undefined {
  if (check.changes === 0 && check.tornLines === 0) return undefined;
  const torn = check.tornLines > 0 ? ` and ${check.tornLines} complete line(s) of its torn end` : '';
  return `its ${changeLines(check.changes)}${torn}`;
}

/** A journal check in words: `issues` are problems (verify exits 1), `notes` are not. */
export function describeJournal(check: JournalCheck): { issues: ValidationIssue[]; notes: string[] } {
  const torn =
    check.tornLines > 0
      ? `${check.tornBytes} bytes at its end that readers ignore, ${check.tornLines} complete line${check.tornLines === 1 ? '' : 's'} among them (damaged, or after damaged bytes: a write a power cut interrupted, or damage to its last lines); the next write keeps a copy of the journal and folds it into the main file`
      : `${check.tornBytes} bytes of an interrupted write at its end (ignored; the next write drops them)`;
  switch (check.status) {
    case 'missing':
      return { issues: [], notes: [] };
    case 'not-checked':
      return { issues: [], notes: ['cannot be checked: there is no usable main file to check it against'] };
    case 'header-unreadable':
      return { issues: [{ path: '(header)', message: check.reason ?? 'unreadable' }], notes: [] };
    case 'does-not-continue': {
      const holds = foreignJournalHolds(check);
      if (holds === undefined) {
        return { issues: [], notes: ['an older journal with no changes in it (the next write replaces it)'] };
      }
      return {
        issues: [
          {
            path: '(header)',
            message: `does not continue the main file: ${holds} would be set aside, not applied`,
          },
        ],
        notes: [],
      };
    }
    case 'damaged': {
      const damaged = check.damaged as NonNullable<JournalCheck['damaged']>;
      return {
        issues: [
          {
            path: `byte ${damaged.firstOffset}`,
            message: `${damaged.count} damaged line${damaged.count === 1 ? '' : 's'} (first: ${damaged.reason}), skipped by readers; ${changeLines(check.changes)} intact`,
          },
        ],
        notes: check.tornBytes > 0 ? [torn] : [],
      };
    }
    case 'torn-tail':
      return { issues: [], notes: [torn] };
    case 'ok':
      return { issues: [], notes: [] };
  }
}
