import { crc32 } from 'node:zlib';
import type { StatePatch } from '../model/state-patch.js';

/**
 * The journal (`.agent_metrics.journal`) is a text file of lines, each
 * `<crc32 of the JSON, 8 hex digits> <JSON>\n`. JSON never holds a raw newline, so a line can be
 * found again after a damaged one. The first line is the header (`{"agent_metrics_journal":1,
 * "id":"…"}`); every later line is one committed `StatePatch`.
 *
 * A line becomes part of the journal only once it is complete and its checksum matches: a write
 * cut short by a crash or power cut leaves a torn last line, which readers ignore and the next
 * writer cuts off. A bad line followed by good ones is damage, not a torn write.
 */
export const JOURNAL_FORMAT = 2;
/**
 * Formats this version reads. Format 2 added `agent_fields` (profiles changed field by field); a
 * version that knows only format 1 sets a format 2 journal aside instead of misreading it, and
 * this version checkpoints a format 1 journal before writing to it (see `MetricsStore`).
 */
const READABLE_FORMATS: readonly number[] = [1, 2];

const NEWLINE = 0x0a;
const CHECKSUM_DIGITS = 8;

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
  const body = Buffer.from(json, 'utf8');
  const checksum = crc32(body).toString(16).padStart(CHECKSUM_DIGITS, '0');
  return Buffer.concat([Buffer.from(`${checksum} `), body, Buffer.from('\n')]);
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

/** Minimal shape check: the store validates what a patch changes before it writes it. */
function asPatch(value: unknown): StatePatch | undefined {
  if (!isRecord(value) || !isRecord(value.caps)) return undefined;
  const { max_events, max_sessions } = value.caps;
  if (!Number.isSafeInteger(max_events) || !Number.isSafeInteger(max_sessions)) return undefined;
  return value as unknown as StatePatch;
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
  patch: StatePatch;
  /** Offset just past this line. */
  end: number;
}

export interface ParsedJournal {
  entries: JournalEntry[];
  /** Offset just past the last good line: where the next line goes. */
  validEnd: number;
  /** Bytes after `validEnd`: a torn write (incomplete or damaged last line). */
  tornBytes: number;
  /** Damaged lines followed by good ones (skipped), with the offset where each starts. */
  damaged: Array<{ offset: number; reason: string }>;
}

/**
 * Parses the lines of `data` from `start` (`base` is the file offset of `data[0]`). Never throws.
 */
export function parseEntries(data: Buffer, start: number, base = 0): ParsedJournal {
  const entries: JournalEntry[] = [];
  const bad: Array<{ offset: number; reason: string }> = [];
  let position = start - base;
  let validEnd = start;
  while (position < data.length) {
    const newline = data.indexOf(NEWLINE, position);
    if (newline < 0) break; // incomplete last line
    const body = checkedBody(data.subarray(position, newline));
    const patch = body === undefined ? undefined : asPatch(parseJson(body));
    if (patch) {
      entries.push({ patch, end: base + newline + 1 });
      validEnd = base + newline + 1;
    } else {
      bad.push({
        offset: base + position,
        reason: body === undefined ? 'checksum mismatch' : 'not a change',
      });
    }
    position = newline + 1;
  }
  // Bad lines after the last good one are the torn end of an interrupted write, not damage.
  const damaged = bad.filter((line) => line.offset < validEnd);
  return { entries, validEnd, tornBytes: base + data.length - validEnd, damaged };
}
