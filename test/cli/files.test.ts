import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkFile, listProjectFiles } from '../../src/cli/files.js';
import {
  type FileSystem,
  type Generation,
  METRICS_FILE,
  MetricsStore,
  type RecoveryReport,
} from '../../src/index.js';
import { makeState } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { tempDir } from '../helpers/temp-dir.js';
import { FIXTURE_DIR, pythonProject, run } from './helpers.js';

// The CLI must judge a file with the public `readGeneration`, the very function `load()` uses, so
// `verify` and the store can never disagree. Here it is wrapped, so a test can change its verdict.
const judge = vi.hoisted(() => ({
  override: undefined as ((path: string) => Generation | undefined) | undefined,
}));
vi.mock('../../src/index.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/index.js')>();
  return {
    ...real,
    readGeneration: (fileSystem: FileSystem, path: string, options?: { keepBytes: true }) =>
      judge.override?.(path) ??
      (options ? real.readGeneration(fileSystem, path, options) : real.readGeneration(fileSystem, path)),
  };
});

afterEach(() => {
  judge.override = undefined;
});

describe('verify judges files with readGeneration', () => {
  it('reports a file as corrupt, with its issues, exactly when readGeneration rejects it', async () => {
    const dir = pythonProject();
    const rejected: Generation = {
      kind: 'invalid',
      reason: 'a rule only the store knows',
      issues: [{ path: 'events[0].agent_name', message: 'a rule only the store knows' }],
    };
    judge.override = (path) => (path === join(dir, METRICS_FILE) ? rejected : undefined);
    const { code, stdout } = await run(['verify', '--dir', dir, '--json']);
    expect(code).toBe(1);
    const [main, backup] = JSON.parse(stdout).files;
    expect(main).toMatchObject({ status: 'corrupt', issues: rejected.issues });
    expect(backup).toMatchObject({ status: 'valid', issues: [] });
  });

  it('reads a large file in pieces, as load() does, never whole', async () => {
    const dir = tempDir();
    const store = new MetricsStore({ projectName: 'p', dir, maxEvents: 5000 });
    await store.save(makeState(5000, 0));
    expect(statSync(store.metricsPath).size).toBeGreaterThan(2 * 1024 * 1024);
    const faulty = new FaultyFileSystem();
    const check = await checkFile(store.metricsPath, {}, faulty.fs);
    expect(check.kind).toBe('valid');
    expect(check.kind === 'valid' && check.state.events.length).toBe(5000);
    expect(faulty.methodsCalled()).not.toContain('readFile');
    expect(faulty.methodsCalled().filter((method) => method === 'read').length).toBeGreaterThan(2);
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

describe('listProjectFiles', () => {
  it('is an E_IO error when the folder cannot be listed, and an empty listing when it does not exist', async () => {
    const file = join(tempDir(), 'file');
    writeFileSync(file, '');
    await expect(listProjectFiles(file)).rejects.toMatchObject({ code: 'E_IO', message: /^list failed/ });
    const missing = await listProjectFiles(join(tempDir(), 'none'));
    expect([missing.quarantined, missing.temp]).toEqual([[], []]);
  });
});
