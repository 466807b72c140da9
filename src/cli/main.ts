import { CommanderError } from 'commander';
import { closeWriters, createContext } from './context.js';
import { describeError, EXIT, exitCodeFor } from './errors.js';
import type { CliIo } from './io.js';
import { buildProgram } from './program.js';

export { type CliIo, processIo } from './io.js';

/**
 * Runs `agent-metrics` with `argv` (arguments only, without `node` and the script) and returns
 * the exit code. Reads and writes only through `io`; never calls `process.exit`.
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const context = createContext(io);
  let exitCode: number = EXIT.ok;
  const program = buildProgram(context, async (load) => {
    exitCode = await load();
  });
  let code: number;
  try {
    await program.parseAsync([...argv], { from: 'user' });
    code = exitCode;
  } catch (error) {
    // Commander has already written its message (or the help / version) through io.
    if (!(error instanceof CommanderError)) io.stderr.write(`${describeError(error)}\n`);
    code = exitCodeFor(error);
  }
  // A failed command leaves folding the journal to the next writer: its checkpoint would wait
  // for the lock again (after a lock timeout, as long again).
  await closeWriters(context, code === EXIT.ok);
  return code;
}
