import { InvalidArgumentError } from 'commander';
import { MAX_TIMER_MS } from '../index.js';

/** Argument parsers for commander: a bad value becomes "option '--x <n>' argument 'y' is invalid. …". */

// Decimal digits only: Number() would also take `0x10`, `1e3`, `0b1` and surrounding spaces.
const WHOLE_NUMBER = /^\d+$/;
const DECIMAL_NUMBER = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

export function nonNegativeInteger(value: string): number {
  const number = Number(value);
  if (!WHOLE_NUMBER.test(value) || !Number.isSafeInteger(number)) {
    throw new InvalidArgumentError('Expected a whole number ≥ 0.');
  }
  return number;
}

/** A delay in ms, up to what a Node.js timer can wait (about 24.8 days). */
export function milliseconds(value: string): number {
  const number = nonNegativeInteger(value);
  if (number > MAX_TIMER_MS) {
    throw new InvalidArgumentError(`Expected at most ${MAX_TIMER_MS} ms (about 24.8 days).`);
  }
  return number;
}

export function positiveInteger(value: string): number {
  const number = nonNegativeInteger(value);
  if (number === 0) throw new InvalidArgumentError('Expected a whole number ≥ 1.');
  return number;
}

export function nonNegativeNumber(value: string): number {
  const number = Number(value);
  if (!DECIMAL_NUMBER.test(value) || !Number.isFinite(number)) {
    throw new InvalidArgumentError('Expected a number ≥ 0, such as 34.5.');
  }
  return number;
}

/**
 * A folder: not empty. An unset variable (`--dir "$PROJECT"`) would otherwise mean the current
 * folder, and the project's files would be written where the command happened to run.
 */
export function folder(value: string): string {
  if (value.trim() === '') {
    throw new InvalidArgumentError(
      'Expected a folder (an empty value is not taken for the current one: give . for that).',
    );
  }
  return value;
}

/** File permissions in octal, such as 600 or 0644. */
export function fileMode(value: string): number {
  if (!/^0?[0-7]{3}$/.test(value))
    throw new InvalidArgumentError('Expected octal permissions such as 600 or 644.');
  return Number.parseInt(value, 8);
}

/** For repeatable options (`--artifact a --artifact b`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
