import { crc32 } from 'node:zlib';
import type { JournalChange } from '../model/operations.js';

/**
 * The journal (`.agent_metrics.journal`) is a text file of lines, each
 * `<crc32 of the JSON, 8 hex digits> <JSON>\n`. JSON never holds a raw newline, so a line can be
 * found again after a damaged one, and a complete line that damaged bytes run into is found by
 * its start (see `lineWithin`). The first line is the header (`{"agent_metrics_journal":3,
 * "id":"…"}`); every later line is one committed change: a `StatePatch`, or (format 3) an
 * operation (`RecordEventOperation`, model/operations.ts).
 *
 * A line becomes part of the journal only once it is complete and its checksum matches: a write
 * cut short by a crash or power cut leaves a torn last line, which readers ignore and the next
 * writer cuts off. A bad line followed by good ones is damage, not a torn write.
 *
 * The lines may be followed by NUL bytes, written ahead of them (format 3, the reserve,
 * `JOURNAL_RESERVE_BYTES`): a line written over bytes the file already has leaves its size alone,
 * so its fdatasync has no metadata to commit (0.115 vs 0.190 ms per fdatasync here: `node
 * bench/probes/disk-sync.mjs`). The NUL bytes after the last byte that is not NUL are the
 * reserve; the lines are everything before. JSON and the checksum never hold a NUL byte, so a line
 * holding one (a page a power cut lost, a sector zeroed on the disk) is damaged like any other:
 * skipped when good lines follow it, part of the torn end when none does.
 */
export const JOURNAL_FORMAT = 3;
/**
 * Formats this version reads. Format 2 added `agent_fields` (profiles changed field by field),
 * format 3 operation lines. A version that does not know a journal's format sets it aside instead
 * of misreading it, and this version checkpoints an older journal before writing to it (see
 * `MetricsStore`), so that a line is never read by a version that does not know its format.
 */
const READABLE_FORMATS: readonly number[] = [1, 2, 3];

const NEWLINE = 0x0a;
const NUL = 0x00;
const CHECKSUM_DIGITS = 8;

/**
 * NUL bytes a writer keeps ahead of the last line (see above): ~1,800 recorded events (579-byte
 * operation lines), ~700 patch lines of `update()`.
 */
export const JOURNAL_RESERVE_BYTES = 1 << 20;
/** A write that would leave fewer reserved bytes than this lays a new reserve after its lines. */
export const JOURNAL_RESERVE_LOW_WATER = 1 << 18;
/**
 * No reserve before the journal holds this many bytes of lines: a store that records an event now
 * and then gets an idle checkpoint (a new journal) between two events, and laying 1 MiB and its
 * fdatasync for each would cost it 1.65 ms instead of 0.19 per event (the reviewer's probe).
 */
export const JOURNAL_RESERVE_AFTER = 16 * 1024;

export interface JournalHeader {
  agent_metrics_journal: number;
  /** Random id; the snapshot names the journal it continues with (see `JournalBinding`). */
  id: string;
  /**
   * The journal the snapshot folded, and up to which offset (the snapshot's `folded_id` and
   * `folded_offset`, repeated here): when that snapshot is lost (corrupt), its `.bak` plus the
   * folded journal's kept copy (`.journal.bak`) up to `offset`, plus this journal, rebuild it.
   */
  follows?: { id: string; offset: number };
}

export function encodeLine(json: string): Buffer {
  // One buffer, the JSON encoded into it in place: one line per recorded event.
  const length = Buffer.byteLength(json, 'utf8');
  const line = Buffer.allocUnsafe(CHECKSUM_DIGITS + 1 + length + 1);
  line.write(json, CHECKSUM_DIGITS + 1, 'utf8');
  const checksum = crc32(line.subarray(CHECKSUM_DIGITS + 1, CHECKSUM_DIGITS + 1 + length));
  line.write(checksum.toString(16).padStart(CHECKSUM_DIGITS, '0'), 0, 'latin1');
  line[CHECKSUM_DIGITS] = 0x20;
  line[line.length - 1] = NEWLINE;
  return line;
}

export function encodeHeader(id: string, follows?: JournalHeader['follows']): Buffer {
  const header: JournalHeader = { agent_metrics_journal: JOURNAL_FORMAT, id };
  if (follows) header.follows = follows;
  return encodeLine(JSON.stringify(header));
}

/** The JSON of a line (without its newline) when its checksum matches, else undefined. */
function checkedBody(line: Buffer): string | undefined {
  if (line.length < CHECKSUM_DIGITS + 1 || line[CHECKSUM_DIGITS] !== 0x20) return undefined;
  const expected = Number.parseInt(line.subarray(0, CHECKSUM_DIGITS).toString('latin1'), 16);
  const body = line.subarray(CHECKSUM_DIGITS + 1);
  if (!Number.isFinite(expected) || crc32(body) !== expected) return undefined;
  return body.toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Minimal shape check: the store validates what a change makes before it writes it. An operation
 * needs the fields replaying it reads before anything else (the event's agent and lists).
 */
function asChange(value: unknown): JournalChange | undefined {
  if (!isRecord(value) || !isRecord(value.caps)) return undefined;
  const { max_events, max_sessions } = value.caps;
  if (!Number.isSafeInteger(max_events) || !Number.isSafeInteger(max_sessions)) return undefined;
  if (value.op === undefined) return value as unknown as JournalChange;
  const event = value.event;
  const replayable =
    value.op === 'record_event' &&
    typeof value.at === 'string' &&
    isRecord(event) &&
    typeof event.agent_name === 'string' &&
    typeof event.event_id === 'string' &&
    Array.isArray(event.artifacts);
  return replayable ? (value as unknown as JournalChange) : undefined;
}

function followsOf(value: unknown): JournalHeader['follows'] {
  if (!isRecord(value) || typeof value.id !== 'string') return undefined;
  const offset = value.offset;
  return Number.isSafeInteger(offset) && (offset as number) >= 0
    ? { id: value.id, offset: offset as number }
    : undefined;
}

/** The header's id (and `follows`), or why the header is not one. */
export function parseHeader(
  data: Buffer,
): { id: string; end: number; format: number; follows?: JournalHeader['follows'] } | { reason: string } {
  const end = data.indexOf(NEWLINE);
  if (end < 0) return { reason: 'journal header incomplete' };
  const body = checkedBody(data.subarray(0, end));
  const header = body === undefined ? undefined : parseJson(body);
  const format = isRecord(header) ? header.agent_metrics_journal : undefined;
  const known = typeof format === 'number' && READABLE_FORMATS.includes(format);
  if (!isRecord(header) || !known || typeof header.id !== 'string') {
    return { reason: 'journal header damaged or of an unknown format' };
  }
  const follows = followsOf(header.follows);
  const parsed = { id: header.id, end: end + 1, format };
  return follows ? { ...parsed, follows } : parsed;
}

export interface JournalEntry {
  change: JournalChange;
  /** Offset just past this line. */
  end: number;
}

export interface ParsedJournal {
  entries: JournalEntry[];
  /** Offset just past the last good line: where the next line goes. */
  validEnd: number;
  /**
   * Bytes after `validEnd` that are not reserve: a torn write (incomplete or damaged last lines,
   * and a complete line found inside them, see `parseEntries`). The NUL bytes of the reserve
   * after them are not counted.
   */
  tornBytes: number;
  /**
   * How many newline-ended lines the torn end holds; each failed its check (a complete line found
   * inside one counts with it). A write a crash cut short leaves none: its bytes are a prefix of
   * the lines it wrote. A power cut that lost a page before a kept one leaves some, and so does
   * damage to the journal's last lines (nothing tells which).
   */
  tornLines: number;
  /** Damaged lines followed by good ones (skipped), with the offset where each starts. */
  damaged: Array<{ offset: number; reason: string }>;
}

/** NUL bytes, allocated once (the size of a reserve) and shared. */
let zeros: Buffer | undefined;

/** `length` NUL bytes; read-only, shared. */
export function nulBytes(length: number): Buffer {
  if (zeros === undefined || zeros.length < length)
    zeros = Buffer.alloc(Math.max(length, JOURNAL_RESERVE_BYTES));
  return zeros.subarray(0, length);
}

/**
 * Where the lines of `data` end, no lower than `from`: just past its last byte that is not NUL.
 * The NUL bytes after that are the reserve (see above).
 */
export function linesEnd(data: Buffer, from = 0): number {
  let end = data.length;
  if (end === 0 || data[end - 1] !== NUL) return end; // no reserve
  // Whole blocks first: comparing with a block of NUL bytes runs at memcmp speed, the reserve is 1 MiB.
  const block = nulBytes(4096);
  while (end - block.length >= from && data.subarray(end - block.length, end).equals(block)) {
    end -= block.length;
  }
  while (end > from && data[end - 1] === NUL) end--;
  return end;
}

/** At most this many places inside one damaged line are checked by `lineWithin`. */
export const LINE_STARTS_TRIED = 64;
const SPACE_BRACE = Buffer.from(' {', 'latin1');

/**
 * The complete line a damaged one ends with, if any. Damaged bytes run into the next line when
 * the newline after them was damaged (the line it ended is lost), or when an earlier line's page
 * was lost in a power cut while all of the next line's bytes were on kept pages. That line starts
 * where its checksum, a space and `{` start and the rest up to `newline` checks out; the leftmost
 * such place is taken, since those after it are inside its JSON. A match by chance needs a 32-bit
 * checksum to agree too. At most `LINE_STARTS_TRIED` places (a space and `{`) are checked:
 * garbage full of them must not make a load slow.
 */
function lineWithin(data: Buffer, from: number, newline: number): JournalChange | undefined {
  const span = data.subarray(from, newline);
  let at = span.indexOf(SPACE_BRACE, CHECKSUM_DIGITS);
  for (let tried = 0; at >= 0 && tried < LINE_STARTS_TRIED; tried++) {
    const body = checkedBody(span.subarray(at - CHECKSUM_DIGITS));
    const change = body === undefined ? undefined : asChange(parseJson(body));
    if (change) return change;
    at = span.indexOf(SPACE_BRACE, at + 1);
  }
  return undefined;
}

/**
 * Parses the lines of `data` from `start` (`base` is the file offset of `data[0]`), up to the
 * reserve (see above). A complete line found inside a damaged one (see `lineWithin`) is kept when
 * a line read the usual way follows it; at the end it is part of the torn end, as the damaged
 * bytes before it are: after a power cut neither was acknowledged (the later line's fdatasync
 * would have flushed the earlier one), and cutting both leaves the changes a prefix of those made.
 * Never throws.
 */
export function parseEntries(data: Buffer, start: number, base = 0): ParsedJournal {
  const entries: JournalEntry[] = [];
  const bad: Array<{ offset: number; reason: string }> = [];
  /** Lines found inside damaged ones since the last line read the usual way. */
  let found: JournalEntry[] = [];
  let position = start - base;
  let validEnd = start;
  const end = linesEnd(data, position);
  while (position < end) {
    const newline = data.indexOf(NEWLINE, position);
    if (newline < 0 || newline >= end) break; // incomplete last line
    const body = checkedBody(data.subarray(position, newline));
    const change = body === undefined ? undefined : asChange(parseJson(body));
    if (change) {
      if (found.length > 0) {
        entries.push(...found);
        found = [];
      }
      entries.push({ change, end: base + newline + 1 });
      validEnd = base + newline + 1;
    } else {
      bad.push({
        offset: base + position,
        reason: body === undefined ? 'checksum mismatch' : 'not a change',
      });
      // A line whose checksum matched was written whole: only a mismatch may hide another line.
      const within = body === undefined ? lineWithin(data, position + 1, newline) : undefined;
      if (within) found.push({ change: within, end: base + newline + 1 });
    }
    position = newline + 1;
  }
  // Bad lines after the last good one are the torn end of an interrupted write, not damage.
  const damaged = bad.filter((line) => line.offset < validEnd);
  const tornLines = bad.length - damaged.length;
  return { entries, validEnd, tornBytes: base + end - validEnd, tornLines, damaged };
}
