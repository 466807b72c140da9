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
  /** Folder that relative paths (and the default `--dir`) are resolved against. */
  cwd: string;
  /** Terminal width, used to wrap `--help`. @default 80 */
  columns?: number;
}

/**
 * `agent-metrics show | head -1`: the reader goes away and the next write fails with EPIPE.
 * That is the reader's choice, not our failure: stop writing quietly instead of crashing with
 * a stack trace. Any other stdout error still surfaces.
 */
export function ignoreBrokenPipe(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE') throw error;
}

/** The real process: what `bin.ts` passes to `main()`. */
export function processIo(): CliIo {
  if (!process.stdout.listeners('error').includes(ignoreBrokenPipe))
    process.stdout.on('error', ignoreBrokenPipe);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    isTTY: process.stdout.isTTY === true,
    cwd: process.cwd(),
    columns: process.stdout.columns,
  };
}

/** Reads all of stdin as UTF-8 text. */
export async function readAll(stdin: AsyncIterable<string | Uint8Array>): Promise<string> {
  const decoder = new TextDecoder('utf-8');
  let text = '';
  for await (const chunk of stdin) {
    text += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}
