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
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    // Commander has already written its message (or the help / version) through io.
    if (!(error instanceof CommanderError)) io.stderr.write(`${describeError(error)}\n`);
    return exitCodeFor(error);
  } finally {
    await closeWriters(context);
  }
}
