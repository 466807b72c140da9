import { fstatSync } from 'node:fs';
import { EXIT, UsageError } from './errors.js';

/**
 * Everything the CLI touches outside its arguments. `main()` reads and writes only through this,
 * so every command runs in-process in tests with captured output and a scripted stdin.
 */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Read only by commands that take input from stdin (`record --json -`). */
  stdin: AsyncIterable<string | Uint8Array>;
  env: Readonly<Record<string, string | undefined>>;
  /** stdout is a terminal: colours and bordered tables (unless `NO_COLOR`). */
  isTTY: boolean;
  /** stderr is a terminal: coloured warnings. @default false */
  stderrIsTTY?: boolean;
  /** Folder that relative paths (and the default `--dir`) are resolved against. */
  cwd: string;
  /** Terminal width, used to wrap `--help`. @default 80 */
  columns?: number;
}

let stdoutError: Error | undefined;

/**
 * stdout failed to take what we wrote. `agent-metrics show | head -1`: the reader went away (EPIPE),
 * its choice, not our failure: stop writing quietly. Anything else (a full disk under `> file`) is
 * an I/O failure like any other: `error E_IO` on stderr and exit code 3, once, not a stack trace
 * and exit code 1 (which `verify` uses for "problems found"). The stream reports it through an
 * event, maybe after `main()` has returned: hence the exit code set here, kept by `bin.ts`.
 */
export function onStdoutError(error: NodeJS.ErrnoException): void {
  if (error.code === 'EPIPE' || stdoutError !== undefined) return;
  stdoutError = error;
  process.exitCode = EXIT.storage;
  try {
    process.stderr.write(`error E_IO: could not write to stdout: ${error.message}\n`);
  } catch {
    // stderr fails too (`> /dev/full 2>&1`): the exit code says it.
  }
}

/**
 * stderr failed: there is nowhere left to say so, and a warning lost must not crash the command
 * (an unhandled stream error would end it before it closes its stores).
 */
export function onStderrError(): void {}

/** The stdout failure `onStdoutError` reported, if any. */
export function stdoutFailure(): Error | undefined {
  return stdoutError;
}

/** The real process: what `bin.ts` passes to `main()`. */
export function processIo(): CliIo {
  if (!process.stdout.listeners('error').includes(onStdoutError)) process.stdout.on('error', onStdoutError);
  if (!process.stderr.listeners('error').includes(onStderrError)) process.stderr.on('error', onStderrError);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: processStdin(),
    env: process.env,
    isTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    cwd: process.cwd(),
    columns: process.stdout.columns,
  };
}

/**
 * The process's stdin, or, when it is redirected from a folder (`< some/folder`), one that fails
 * saying so when read: Node reads a folder as an empty stream, and `record --json -` then said
 * "stdin is empty".
 */
function processStdin(): AsyncIterable<string | Uint8Array> {
  let isFolder = false;
  try {
    isFolder = fstatSync(0).isDirectory();
  } catch {
    // No stdin at all (fd 0 closed): Node's own stream reports that when it is read.
  }
  return isFolder ? FOLDER_STDIN : process.stdin;
}

const FOLDER_STDIN: AsyncIterable<never> = {
  [Symbol.asyncIterator]: () => ({
    next: () =>
      Promise.reject(
        new UsageError(
          'stdin is a folder, not a file or a pipe: redirect a file (< events.ndjson) or pipe the input in',
        ),
      ),
  }),
};

/**
 * Reads all of stdin as UTF-8 text. Bytes that are not UTF-8 (a hook writing Latin-1) are a usage
 * error naming the first one: decoded leniently they became U+FFFD, and `caf\xe9` a second agent.
 */
export async function readAll(stdin: AsyncIterable<string | Uint8Array>): Promise<string> {
  const pieces: Buffer[] = [];
  for await (const chunk of stdin)
    pieces.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  const bytes = Buffer.concat(pieces);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const offset = firstInvalidByte(bytes);
    throw new UsageError(
      `stdin is not UTF-8 text: the bytes from offset ${offset} (0x${bytes[offset]?.toString(16).padStart(2, '0')}) are no UTF-8 character`,
    );
  }
}

/**
 * Where the first byte that is not UTF-8 is: the first U+FFFD of a lenient decoding that the
 * input did not spell itself (as EF BF BD, a valid U+FFFD).
 */
function firstInvalidByte(bytes: Buffer): number {
  let offset = 0;
  for (const char of bytes.toString('utf8')) {
    const spelled = bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd;
    if (char === '\uFFFD' && !spelled) return offset;
    offset += Buffer.byteLength(char);
  }
  return offset;
}
