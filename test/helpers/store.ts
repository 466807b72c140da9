import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { linesEnd } from '../../src/store/journal-format.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import type { MetricsStoreOptions } from '../../src/store/options.js';
import type { RecoveryReport } from '../../src/store/recovery.js';

/** A store in `dir` that collects its recovery reports. */
export function storeIn(dir: string, options: Partial<MetricsStoreOptions> = {}) {
  const reports: RecoveryReport[] = [];
  const store = new MetricsStore({
    projectName: 'test-project',
    dir,
    onRecover: (report) => reports.push(report),
    ...options,
  });
  return { store, reports };
}

/** Names of temp files in `dir` (`*.tmp-*`). */
export function tempFilesIn(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.includes('.tmp-'));
}

export function corruptFilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.includes('.corrupt-'))
    .sort();
}

export function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8'));
}

export const file = (dir: string, name: string) => join(dir, name);

/**
 * The journal's lines: its bytes without the reserve after them (the NUL bytes a writer lays
 * ahead of the next lines, see `JOURNAL_RESERVE_BYTES`).
 */
export function journalLines(path: string): Buffer {
  const data = readFileSync(path);
  return data.subarray(0, linesEnd(data));
}
