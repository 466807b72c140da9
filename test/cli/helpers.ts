import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CliIo } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import type { DashboardState } from '../../src/index.js';
import { tempDir } from '../helpers/temp-dir.js';

export interface RunOptions {
  /** Text, or bytes (which need not be UTF-8). */
  stdin?: string | Buffer;
  isTTY?: boolean;
  stderrIsTTY?: boolean;
  env?: Record<string, string>;
  cwd?: string;
  /** Called with each chunk written to stdout (before it is kept). */
  onStdout?: (text: string) => void;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function* chunksOf(text: string | Buffer | undefined): AsyncIterable<Uint8Array> {
  if (text === undefined) return;
  // Two chunks, split inside a multi-byte character: decoding must not depend on chunk borders.
  const bytes = Buffer.from(text);
  const middle = Math.floor(bytes.length / 2);
  yield bytes.subarray(0, middle);
  yield bytes.subarray(middle);
}

/** Runs `main()` in-process with captured output. */
export async function run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: {
      write: (text: string) => {
        options.onStdout?.(text);
        stdout += text;
      },
    },
    stderr: { write: (text: string) => (stderr += text) },
    stdin: chunksOf(options.stdin),
    env: options.env ?? {},
    isTTY: options.isTTY ?? false,
    stderrIsTTY: options.stderrIsTTY ?? false,
    cwd: options.cwd ?? process.cwd(),
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

export const FIXTURE_DIR = new URL('../fixtures/python-written/', import.meta.url).pathname;

/** A temp folder holding a copy of the two files written by the Python implementation. */
export function pythonProject(): string {
  const dir = tempDir('agent-metrics-cli-');
  cpSync(FIXTURE_DIR, dir, { recursive: true });
  return dir;
}

export function readState(dir: string): DashboardState {
  return JSON.parse(readFileSync(join(dir, '.agent_metrics.json'), 'utf8'));
}

/** Every file in `dir` with its bytes: to show that nothing was written. */
export function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) files[name] = readFileSync(join(dir, name)).toString('base64');
  return files;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escapes is the point
export const ANSI = /\u001b\[/;
