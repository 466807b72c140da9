import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellWord } from '../../src/cli/format/shell.js';
import {
  formatCount,
  formatDuration,
  formatPercent,
  formatTime,
  formatUsd,
} from '../../src/cli/format/units.js';
import { colorsWanted } from '../../src/cli/output.js';
import { tempDir } from '../helpers/temp-dir.js';
import { run } from './helpers.js';

describe('units', () => {
  it('formats counts, money, ratios and durations for people', () => {
    expect(formatCount(1074321)).toBe('1,074,321');
    expect(formatUsd(0)).toBe('$0.00');
    expect(formatUsd(0.05276)).toBe('$0.0528');
    expect(formatUsd(2.928)).toBe('$2.93');
    expect(formatPercent(0.8666)).toBe('86.7%');
    expect(formatDuration(18.776)).toBe('18.8s');
    expect(formatDuration(94.3)).toBe('1m 34s');
    expect(formatDuration(4557.7)).toBe('1h 15m 58s');
  });

  it('shows times in UTC to the minute, whatever offset they were written with', () => {
    expect(formatTime('2026-02-10T10:00:18.500000Z')).toBe('2026-02-10 10:00 UTC');
    expect(formatTime('2026-02-10T12:30:00+02:00')).toBe('2026-02-10 10:30 UTC');
    expect(formatTime('')).toBe('-');
    expect(formatTime('not a time')).toBe('not a time');
  });
});

describe('colorsWanted', () => {
  const io = (isTTY: boolean, env: Record<string, string> = {}) =>
    ({ isTTY, env }) as unknown as Parameters<typeof colorsWanted>[0];
  it('is on for a terminal, off when piped, NO_COLOR wins, FORCE_COLOR forces', () => {
    expect(colorsWanted(io(true))).toBe(true);
    expect(colorsWanted(io(false))).toBe(false);
    expect(colorsWanted(io(true, { NO_COLOR: '1' }))).toBe(false);
    expect(colorsWanted(io(true, { NO_COLOR: '' }))).toBe(true);
    expect(colorsWanted(io(true, { TERM: 'dumb' }))).toBe(false);
    expect(colorsWanted(io(false, { FORCE_COLOR: '1' }))).toBe(true);
    expect(colorsWanted(io(false, { FORCE_COLOR: '1', NO_COLOR: 'x' }))).toBe(false);
  });
});

describe('shellWord', () => {
  it('gives a word a POSIX shell reads back as the same string, and leaves plain paths alone', () => {
    expect(shellWord('/tmp/project-1')).toBe('/tmp/project-1');
    const names = ['my project', "it's", 'a"b', '$HOME', '`x`', 'a;b', '', 'é ü', '--dir'];
    for (const name of names) {
      const echoed = execFileSync('sh', ['-c', `printf '%s' ${shellWord(name)}`], { encoding: 'utf8' });
      expect(echoed, name).toBe(name);
    }
  });

  it('quotes the folder in the command that demo suggests next', async () => {
    const cwd = tempDir();
    const { code, stdout } = await run(['demo', '--dir', "my project's"], { cwd });
    expect(code).toBe(0);
    expect(stdout).toContain(`next: agent-metrics show --dir 'my project'\\''s'`);
  });
});
