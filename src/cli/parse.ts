import { InvalidArgumentError } from 'commander';

/** Argument parsers for commander: a bad value becomes "option '--x <n>' argument 'y' is invalid. …". */

export function nonNegativeInteger(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(number) || number < 0) {
    throw new InvalidArgumentError('Expected a whole number ≥ 0.');
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
  if (value.trim() === '' || !Number.isFinite(number) || number < 0) {
    throw new InvalidArgumentError('Expected a number ≥ 0, such as 34.5.');
  }
  return number;
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
