import { appendFileSync } from 'node:fs';

/**
 * The torture suite runs in two sizes: `short` (the default, run by `npm test` and CI) and `full`
 * (`npm run torture`, which sets TORTURE_MODE=full). Every scenario reads its sizes from here.
 */
export const FULL = process.env.TORTURE_MODE === 'full';

/** Picks the short or the full figure. */
export function size<T>(short: T, full: T): T {
  return FULL ? full : short;
}

/** Seed of the scenario's pseudo-random choices: TORTURE_SEED to replay a failure, else fresh. */
export const SEED = Number(process.env.TORTURE_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** The seeded PRNG the demo uses too (mulberry32). */
export { seededRandom as prng } from '../../src/cli/seeded-random.js';

/** An integer in [min, max]. */
export function between(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** Collects violations (kept short: the first few with details, then a count). */
export class Violations {
  readonly list: string[] = [];

  add(message: string): void {
    this.list.push(message);
  }

  check(ok: boolean, message: () => string): void {
    if (!ok) this.add(message());
  }

  /** For `expect(...).toEqual([])`: the first 20 violations. */
  get first(): string[] {
    return this.list.slice(0, 20);
  }
}

/**
 * Prints the scenario's figures as one line, e.g.
 * `crash-loop: runs=… kills=… acked=… lost=0 … violations=0 seed=…`, and appends it to the file
 * named by TORTURE_REPORT (the runner collects the lines from there).
 */
export function reportScenario(name: string, figures: Record<string, string | number>): string {
  const line = `${name}: ${Object.entries(figures)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ')}`;
  console.log(line);
  if (process.env.TORTURE_REPORT) appendFileSync(process.env.TORTURE_REPORT, `${line}\n`);
  return line;
}

/** Median and maximum of `values` (0 when empty). */
export function p50max(values: readonly number[]): { p50: number; max: number } {
  if (values.length === 0) return { p50: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: sorted[Math.floor((sorted.length - 1) / 2)] as number, max: sorted.at(-1) as number };
}
