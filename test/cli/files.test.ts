import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { METRICS_FILE, MetricsStore, type ParsedStateFile, type RecoveryReport } from '../../src/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { FIXTURE_DIR, pythonProject, run } from './helpers.js';

// The CLI must judge a file with the public `parseStateFile`, the very function `load()` uses, so
// `verify` and the store can never disagree. Here it is wrapped, so a test can change its verdict.
const judge = vi.hoisted(() => ({
  override: undefined as ((data: Uint8Array) => ParsedStateFile | undefined) | undefined,
}));
vi.mock('../../src/index.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/index.js')>();
  return {
    ...real,
    parseStateFile: (data: Uint8Array) => judge.override?.(data) ?? real.parseStateFile(data),
  };
});

afterEach(() => {
  judge.override = undefined;
});

describe('verify judges files with parseStateFile', () => {
  it('reports a file as corrupt, with its issues, exactly when parseStateFile rejects it', async () => {
    const dir = pythonProject();
    const mainBytes = readFileSync(join(dir, METRICS_FILE));
    const rejected: ParsedStateFile = {
      reason: 'a rule only the store knows',
      issues: [{ path: 'events[0].agent_name', message: 'a rule only the store knows' }],
    };
    judge.override = (data) => (Buffer.compare(Buffer.from(data), mainBytes) === 0 ? rejected : undefined);
    const { code, stdout } = await run(['verify', '--dir', dir, '--json']);
    expect(code).toBe(1);
    const [main, backup] = JSON.parse(stdout).files;
    expect(main).toMatchObject({ status: 'corrupt', issues: rejected.issues });
    expect(backup).toMatchObject({ status: 'valid', issues: [] });
  });

  const valid = readFileSync(join(FIXTURE_DIR, METRICS_FILE), 'utf8');
  const deeplyNested = valid.replace(/\}\s*$/, `, "extra": ${'['.repeat(600)}${']'.repeat(600)} }`);
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  const cases: [string, Buffer, 'valid' | 'corrupt'][] = [
    ['a valid file', Buffer.from(valid), 'valid'],
    ['a valid file with a UTF-8 byte order mark', Buffer.concat([bom, Buffer.from(valid)]), 'valid'],
    ['an empty file', Buffer.alloc(0), 'corrupt'],
    ['bytes that are not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 'corrupt'],
    ['a truncated file', Buffer.from(valid.slice(0, 200)), 'corrupt'],
    ['a file nested deeper than the format allows', Buffer.from(deeplyNested), 'corrupt'],
    ['a file without a required key', Buffer.from(valid.replace('"project_name"', '"project"')), 'corrupt'],
  ];
  it.each(cases)('agrees with load() on %s', async (_, bytes, expected) => {
    const dir = tempDir();
    writeFileSync(join(dir, METRICS_FILE), bytes);
    const verified = JSON.parse((await run(['verify', '--dir', dir, '--json'])).stdout).files[0];
    const recoveries: RecoveryReport[] = [];
    await new MetricsStore({ projectName: 'p', dir, onRecover: (report) => recoveries.push(report) }).load();
    expect(verified.status).toBe(expected);
    expect(recoveries.length > 0 ? 'corrupt' : 'valid').toBe(expected);
  });
});
