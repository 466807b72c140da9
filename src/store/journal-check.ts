import { applyChange, type JournalChange } from '../model/operations.js';
import { toStored } from '../model/state-patch.js';
import type { DashboardState } from '../model/types.js';
import { cloneJson, setOwn, workingCopy } from '../model/working-copy.js';
import type { FileSystem } from './file-system.js';
import { replayStart, takeBinding } from './journal-binding.js';
import { readFrom } from './journal-file.js';
import { parseEntries, parseHeader } from './journal-format.js';

/**
 * What a read-only look at the journal finds, judged as the store's locked read would judge it
 * (for `verify` and `repair --dry-run`: no lock, no repair).
 *
 * - `missing`: no journal (a file written by the Python implementation, or never written to).
 * - `not-checked`: there is a journal but no usable JSON file to check it against.
 * - `ok`: it continues the JSON file; `changes` lines are not folded into it yet.
 * - `torn-tail`: as `ok`, but it ends in `tornBytes` of an interrupted write, which readers
 *   ignore and the next writer cuts off (or leaves to a checkpoint, when the journal needs one or
 *   has another name): not a problem. When `tornLines` complete lines are among them (what a
 *   power cut that lost a page leaves, or damage to the last lines), the next writer keeps a copy
 *   of the journal and folds it into a checkpoint instead.
 * - `damaged`: it continues the JSON file, but lines inside it are damaged (readers skip them).
 * - `does-not-continue`: it belongs to another JSON file; the store sets it aside, its `changes`
 *   lines unused (none, and no `tornLines`: nothing is lost, the next write replaces it).
 * - `header-unreadable`: its first line is not a journal header; the store sets it aside.
 */
export interface JournalCheck {
  status:
    | 'missing'
    | 'not-checked'
    | 'ok'
    | 'torn-tail'
    | 'damaged'
    | 'does-not-continue'
    | 'header-unreadable';
  /** Good change lines after where the JSON file's replay starts (or after the header). */
  changes: number;
  tornBytes: number;
  /** Complete lines among the `tornBytes` (see `ParsedJournal.tornLines`). */
  tornLines: number;
  damaged?: { count: number; firstOffset: number; reason: string };
  /** Why the header is unreadable. */
  reason?: string;
  /**
   * The good lines' changes (patches, or operations), in order, when the journal continues the
   * JSON file.
   */
  patches: JournalChange[];
}

/**
 * Checks `journalPath` against `snapshot`, the parsed JSON file (with its `agent_metrics_journal`
 * binding; undefined when there is no usable one). Reads only; I/O errors other than a missing
 * file throw `StorageIOError`.
 */
export async function checkJournal(
  fileSystem: FileSystem,
  journalPath: string,
  snapshot: DashboardState | undefined,
): Promise<JournalCheck> {
  const none = { changes: 0, tornBytes: 0, tornLines: 0, patches: [] };
  const read = await readFrom(fileSystem, journalPath, 0);
  if (read === undefined) return { status: 'missing', ...none };
  if (snapshot === undefined) return { status: 'not-checked', ...none };
  const header = parseHeader(read.data);
  if ('reason' in header) return { status: 'header-unreadable', reason: header.reason, ...none };
  // A shallow copy: the caller's state keeps its binding key.
  const start = replayStart(takeBinding({ ...snapshot }), header.id, header.end);
  if (start === undefined) {
    const { entries, tornBytes, tornLines } = parseEntries(read.data, header.end);
    return { status: 'does-not-continue', ...none, changes: entries.length, tornBytes, tornLines };
  }
  const parsed = parseEntries(read.data, start);
  const first = parsed.damaged[0];
  return {
    status: first ? 'damaged' : parsed.tornBytes > 0 ? 'torn-tail' : 'ok',
    changes: parsed.entries.length,
    tornBytes: parsed.tornBytes,
    tornLines: parsed.tornLines,
    ...(first && {
      damaged: { count: parsed.damaged.length, firstOffset: first.offset, reason: first.reason },
    }),
    patches: parsed.entries.map((entry) => entry.change),
  };
}

/**
 * `snapshot` with `patches` applied as the store applies them on a load, without its binding key.
 * `snapshot` keeps its keys and lists; its events and sessions are shared, and frozen (`toStored`).
 * Its other values are copied: a stored state's values are never changed in place (replay trusts
 * a list of sessions in progress it checked once), and the caller may change `snapshot`'s later.
 * The result is a working copy, as `load()` returns.
 */
export function withJournal(snapshot: DashboardState, patches: readonly JournalChange[]): DashboardState {
  const copy: DashboardState = { ...snapshot };
  for (const key of Object.keys(copy)) {
    if (key !== 'events' && key !== 'sessions') setOwn(copy, key, cloneJson(copy[key]));
  }
  takeBinding(copy);
  // New arrays: `toStored` takes over the lists, and appends may grow them in place.
  let stored = toStored({ ...copy, events: [...copy.events], sessions: [...copy.sessions] });
  for (const patch of patches) stored = applyChange(stored, patch);
  return workingCopy(stored);
}
