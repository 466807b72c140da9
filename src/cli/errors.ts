import { CommanderError } from 'commander';
import { MetricsError, type MetricsErrorCode } from '../index.js';

/** Exit codes of the `agent-metrics` command; documented in `--help`. */
export const EXIT = {
  ok: 0,
  /** `verify` (or `repair --dry-run`) found problems. */
  problems: 1,
  /** Unknown command or flag, bad or missing value, bad input. */
  usage: 2,
  /** Lock timeout, I/O failure, a state that cannot be written. */
  storage: 3,
} as const;

/** A mistake in how the command was called. Exit code 2. */
export class UsageError extends Error {
  readonly code = 'E_USAGE';
}

const USAGE_CODES: ReadonlySet<MetricsErrorCode> = new Set([
  'E_INVALID_INPUT',
  'E_INVALID_OPTIONS',
  'E_NOT_FOUND',
  'E_CONFLICT',
]);

/**
 * The one mapping from errors to exit codes. Branches on the error's `code`, never on its message.
 * Anything unknown is a runtime failure.
 */
export function exitCodeFor(error: unknown): number {
  // Commander's own: `--help` and `--version` end with exit code 0, anything else is a usage error.
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof MetricsError && USAGE_CODES.has(error.code)) return EXIT.usage;
  return EXIT.storage;
}

/** `error E_LOCK_TIMEOUT: could not acquire …` — the code first, so scripts can grep it. */
export function describeError(error: unknown): string {
  if (error instanceof UsageError || error instanceof MetricsError)
    return `error ${error.code}: ${error.message}`;
  const message = error instanceof Error ? error.message : String(error);
  return `error E_UNEXPECTED: ${message}`;
}
