import { constants } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { errnoCode, StorageIOError, type ValidationIssue } from '../errors.js';
import { validateState } from '../model/schema.js';

export { MAX_NESTING } from '../model/schema.js';

import type { DashboardState } from '../model/types.js';
import { type FileStat, type FileSystem, notAFile } from './file-system.js';
import { StateFileStream } from './state-file-stream.js';

/** What recovery did and why; passed to the `onRecover` option. */
export interface RecoveryReport {
  /**
   * - `restored-from-backup`: the main file was unusable; the `.bak` generation is now the main file.
   * - `started-fresh`: neither file was usable; the project starts from an empty state.
   * - `quarantined-before-save`: a save found a corrupt main file; it was moved aside (the `.bak`
   *   is kept as it was) and the new state written.
   * - `journal-tail-truncated`: the journal ended in a torn write (cut short by a crash, never
   *   acknowledged), left out of the state: cut off in place, or, when the journal needs a
   *   checkpoint anyway or has another name, left to the next write's checkpoint (`save()`
   *   replaces the journal without reading it). When the torn end holds complete lines (what a
   *   power cut that lost a page leaves, but also damage to the last lines, which were
   *   acknowledged), a copy of the journal is kept (`quarantinedPath`) and it is never cut in
   *   place.
   * - `journal-repaired`: damaged lines inside the journal were skipped (every good line was
   *   kept), the journal was folded into a checkpoint, and a copy of it kept as evidence.
   * - `journal-replayed-from-backup`: the state file was restored from `.bak` (reported before
   *   as `restored-from-backup`), and the changes made since then were replayed from the journal
   *   that `.bak` continues (kept as `.agent_metrics.journal.bak`) and the journal: nothing lost,
   *   unless lines of theirs were damaged (`reason` says how many): then a copy is kept of each
   *   file that held such lines, the journal as `quarantinedPath`, `.agent_metrics.journal.bak` as
   *   `quarantinedBackupPath`.
   * - `journal-set-aside`: the journal does not continue the state file (the file was replaced by
   *   another program, or restored from a `.bak` whose journal is gone); it was moved aside, not
   *   replayed.
   *
   * When a copy cannot be made, its path is absent, `reason` ends with why, and the store carries
   * on (a missing copy never blocks writes).
   */
  action:
    | 'restored-from-backup'
    | 'started-fresh'
    | 'quarantined-before-save'
    | 'journal-tail-truncated'
    | 'journal-repaired'
    | 'journal-replayed-from-backup'
    | 'journal-set-aside';
  /** Why the main file was not used, e.g. `not valid JSON: Unexpected end of JSON input`. */
  reason: string;
  /** Where the corrupt file (or the journal's copy) was moved (`<file>.corrupt-<UTC timestamp>`). */
  quarantinedPath?: string;
  /** With `started-fresh`: why the backup was not used either. */
  backupReason?: string;
  /**
   * Where a corrupt backup was moved, if it existed (with `journal-replayed-from-backup`: the copy
   * of `.agent_metrics.journal.bak`).
   */
  quarantinedBackupPath?: string;
}

/**
 * One file on disk, classified. `invalid` carries the reason in words, and each problem with its
 * path (`issues`). `data` (the file's bytes) only when asked for (`Generation<Buffer>`): holding
 * them with the parsed state costs as much memory again.
 */
export type Generation<Bytes extends Buffer | undefined = undefined> =
  | { kind: 'missing' }
  | { kind: 'valid'; state: DashboardState; data: Bytes; stat: FileStat }
  | { kind: 'invalid'; reason: string; issues: ValidationIssue[] };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** What a file's bytes hold: a valid state, or why not (with each problem's path, when known). */
export type ParsedStateFile = { state: DashboardState } | { reason: string; issues: ValidationIssue[] };

const WHOLE_FILE = '(file)';

/** Pieces in which `readGeneration` reads a state file. */
const READ_PIECE_BYTES = 1 << 20;

function unusable(reason: string): ParsedStateFile {
  return { reason, issues: [{ path: WHOLE_FILE, message: reason }] };
}

/**
 * Parses and validates the bytes of a state file exactly as `load()` judges them; never throws.
 * Anything it rejects, `load()` moves aside as corrupt.
 */
export function parseStateFile(data: Uint8Array): ParsedStateFile {
  if (data.length === 0) return unusable('empty file');
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    return unusable('not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    // Deeply nested input can overflow the parser's stack: that is corruption too.
    return unusable(`not valid JSON: ${(error as Error).message}`);
  }
  return judgeParsed(value);
}

/** A parsed state file's value, validated. */
function judgeParsed(value: unknown): ParsedStateFile {
  const issues = validateState(value);
  if (issues.length > 0) {
    const first = issues.slice(0, 3).map((issue) => `${issue.path}: ${issue.message}`);
    const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : '';
    return { reason: `does not match the format: ${first.join('; ')}${more}`, issues };
  }
  return { state: value as DashboardState };
}

/**
 * Reads and classifies a file. Only a missing file is `missing`; other read errors throw E_IO.
 * Read in pieces and parsed as they come (`StateFileStream`), so that the file's bytes, its text
 * and its parsed state are never all in memory at once; a file that cannot be parsed that way is
 * read again whole and judged by `parseStateFile`, which says what is wrong with it. With
 * `keepBytes`, read whole, and its bytes returned as `data`.
 */
export async function readGeneration(
  fileSystem: FileSystem,
  path: string,
  options: { keepBytes: true },
): Promise<Generation<Buffer>>;
export async function readGeneration(fileSystem: FileSystem, path: string): Promise<Generation>;
export async function readGeneration(
  fileSystem: FileSystem,
  path: string,
  options: { keepBytes?: true } = {},
): Promise<Generation<Buffer | undefined>> {
  const streamed = options.keepBytes ? undefined : await readStreaming(fileSystem, path);
  if (streamed === 'missing') return { kind: 'missing' };
  if (streamed?.value !== undefined) {
    const parsed = judgeParsed(streamed.value);
    if ('reason' in parsed) return { kind: 'invalid', reason: parsed.reason, issues: parsed.issues };
    return { kind: 'valid', state: parsed.state, data: undefined, stat: streamed.stat };
  }
  let read: { data: Buffer; stat: FileStat };
  try {
    read = await fileSystem.readFile(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { kind: 'missing' };
    // EACCES, EIO, …: the file may be fine; never treat an unreadable file as corrupt.
    throw new StorageIOError('read', path, error);
  }
  const parsed = parseStateFile(read.data);
  if ('reason' in parsed) return { kind: 'invalid', reason: parsed.reason, issues: parsed.issues };
  return {
    kind: 'valid',
    state: parsed.state,
    data: options.keepBytes ? read.data : undefined,
    stat: read.stat,
  };
}

/** The file parsed piece by piece; `value` undefined when it could not be parsed that way. */
async function readStreaming(
  fileSystem: FileSystem,
  path: string,
): Promise<'missing' | { value: Record<string, unknown> | undefined; stat: FileStat }> {
  let fd: number;
  try {
    fd = await fileSystem.open(path, 'read');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return 'missing';
    throw new StorageIOError('read', path, error);
  }
  try {
    const stat = await fileSystem.fstat(fd);
    const unreadable = notAFile(path, stat.mode);
    if (unreadable) throw unreadable;
    const stream = new StateFileStream();
    for (let position = 0; ; ) {
      const piece = await fileSystem.read(fd, position, READ_PIECE_BYTES);
      if (piece.length === 0) break;
      position += piece.length;
      if (!stream.push(piece)) return { value: undefined, stat };
    }
    return { value: stream.end(), stat };
  } catch (error) {
    throw new StorageIOError('read', path, error);
  } finally {
    await fileSystem.close(fd).catch(() => undefined);
  }
}

/** `20261123T234512.345Z`: sortable, no characters that are awkward in file names. */
function compactTimestamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '');
}

/**
 * Moves `path` aside to `<path>.corrupt-<UTC timestamp>` and returns the new path. Evidence is
 * never deleted by us. Call only under the lock.
 */
export async function quarantine(fileSystem: FileSystem, path: string, now = new Date()): Promise<string> {
  return keepAside(
    fileSystem,
    path,
    'move corrupt file aside',
    (target) => fileSystem.rename(path, target),
    now,
  );
}

/**
 * Like `quarantine`, but leaves `path` in place: the evidence is a hard link (a copy where links
 * fail, fsynced; with `durability: 'fsync'`, the folder fsync of the checkpoint that follows makes
 * its name durable). A hard link of the very file that is already aside is the copy: processes
 * that each find the same damage, while the checkpoint that would replace the file fails (a full
 * disk), keep one. A copy that fails is removed: an empty or partial file would pass for the
 * evidence.
 */
export async function keepCopyAside(fileSystem: FileSystem, path: string, now = new Date()): Promise<string> {
  const kept = await linkAlreadyAside(fileSystem, path);
  if (kept !== undefined) return kept;
  return keepAside(
    fileSystem,
    path,
    'keep a copy of a damaged file',
    async (target) => {
      // link(2) of a symbolic link links the link, not the file: its bytes are copied instead.
      const own = await fileSystem.lstat?.(path).catch(() => undefined);
      if (own === undefined || (own.mode & constants.S_IFMT) !== constants.S_IFLNK) {
        try {
          await fileSystem.link(path, target);
          return;
        } catch {
          // Copied below.
        }
      }
      const { data } = await fileSystem.readFile(path);
      const fd = await fileSystem.open(target, 'create-exclusive');
      try {
        await fileSystem.write(fd, data, 0);
        await fileSystem.fsync(fd);
      } catch (error) {
        await fileSystem.unlink(target).catch(() => undefined);
        throw error;
      } finally {
        await fileSystem.close(fd).catch(() => undefined);
      }
    },
    now,
  );
}

/** A `<path>.corrupt-…` name that is a hard link of the file `path` names, if any. */
async function linkAlreadyAside(fileSystem: FileSystem, path: string): Promise<string | undefined> {
  const own = await fileSystem.stat(path).catch(() => undefined);
  if (own === undefined) return undefined;
  const dir = dirname(path);
  const prefix = `${basename(path)}.corrupt-`;
  const names = await fileSystem.readdir(dir).catch(() => []);
  for (const name of names.filter((entry) => entry.startsWith(prefix)).sort()) {
    // The name itself (lstat): a symbolic link to the file is not a copy of it.
    const candidate = join(dir, name);
    const aside = await (fileSystem.lstat?.(candidate) ?? fileSystem.stat(candidate)).catch(() => undefined);
    if (aside?.ino === own.ino && aside.dev === own.dev) return candidate;
  }
  return undefined;
}

async function keepAside(
  fileSystem: FileSystem,
  path: string,
  operation: string,
  place: (target: string) => Promise<void>,
  now: Date,
): Promise<string> {
  const base = `${path}.corrupt-${compactTimestamp(now)}`;
  for (let attempt = 1; ; attempt++) {
    const target = attempt === 1 ? base : `${base}-${attempt}`;
    const taken = await fileSystem.stat(target).then(
      () => true,
      () => false,
    );
    if (taken) continue;
    try {
      await place(target);
    } catch (error) {
      throw new StorageIOError(operation, path, error);
    }
    return target;
  }
}

/** A file's identity: the same string means the same, unmodified file. */
export function identityOf(stat: FileStat): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
}
