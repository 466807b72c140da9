import { createRequire } from 'node:module';
import type Table from 'cli-table3';
import pc from 'picocolors';
import type { CliIo } from './io.js';

export type Colors = ReturnType<typeof pc.createColors>;

// cli-table3 (CommonJS) is loaded on first use: `record`, the command hooks run, draws no table
// and should not pay for loading it at start-up.
const require = createRequire(import.meta.url);
const loadTable = (): typeof Table => require('cli-table3');

/**
 * Colours only on a terminal, and never with `NO_COLOR` (https://no-color.org: any non-empty
 * value) or `TERM=dumb`; `FORCE_COLOR` (not `0`) turns them on when piped.
 */
export function colorsWanted(io: CliIo, stream: 'stdout' | 'stderr' = 'stdout'): boolean {
  const { NO_COLOR, FORCE_COLOR, TERM } = io.env;
  if (NO_COLOR) return false;
  if (FORCE_COLOR !== undefined && FORCE_COLOR !== '0') return true;
  const terminal = stream === 'stdout' ? io.isTTY : io.stderrIsTTY === true;
  return terminal && TERM !== 'dumb';
}

export interface TableSpec {
  head: string[];
  rows: string[][];
  /** Columns (by index) that hold numbers: right-aligned. */
  numeric?: readonly number[];
}

const NO_BORDERS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '  ',
};

/** All human-readable output goes through here; `--json` output uses `json()` alone. */
export class Output {
  readonly colors: Colors;
  /** Terminal output: bordered tables. Otherwise plain aligned columns that `awk` can split. */
  readonly fancy: boolean;
  /** stderr's own: `2> log` keeps escape codes out of the log even when stdout is a terminal. */
  private readonly warnColors: Colors;

  constructor(private readonly io: CliIo) {
    this.fancy = colorsWanted(io);
    this.colors = pc.createColors(this.fancy);
    this.warnColors = pc.createColors(colorsWanted(io, 'stderr'));
  }

  line(text = ''): void {
    this.io.stdout.write(`${text}\n`);
  }

  /** Exactly one JSON document on stdout. */
  json(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** One compact JSON document per line (NDJSON). */
  ndjson(values: Iterable<unknown>): void {
    for (const value of values) this.io.stdout.write(`${JSON.stringify(value)}\n`);
  }

  warn(text: string): void {
    this.io.stderr.write(`${this.warnColors.yellow('warning')}: ${text}\n`);
  }

  heading(text: string): void {
    this.line(this.colors.bold(text));
  }

  table(spec: TableSpec): void {
    const colAligns = spec.head.map((_, index) => (spec.numeric?.includes(index) ? 'right' : 'left'));
    const CliTable = loadTable();
    const table = new CliTable({
      head: spec.head.map((cell) => this.colors.bold(cell)),
      colAligns,
      // cli-table3 colours heads red by default: colours are ours to choose (and to switch off).
      style: this.fancy
        ? { head: [], border: [], compact: true }
        : { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
      ...(this.fancy ? {} : { chars: NO_BORDERS }),
    });
    // One by one: a spread of ~125,000 rows overflows the call stack.
    for (const row of spec.rows) table.push(row);
    // Plain tables pad the last column too; trailing blanks only get in the way of scripts.
    const text = this.fancy ? table.toString() : table.toString().replace(/ +$/gm, '');
    this.line(text);
  }
}
