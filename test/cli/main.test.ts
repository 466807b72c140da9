import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describeError, EXIT, exitCodeFor, UsageError } from '../../src/cli/errors.js';
import { onStdoutError, processIo, readAll } from '../../src/cli/io.js';
import { LockAcquisitionError, MetricsError, StorageIOError } from '../../src/index.js';
import { run } from './helpers.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

const COMMANDS = [
  ['record'],
  ['session'],
  ['session', 'start'],
  ['session', 'end'],
  ['show'],
  ['stats'],
  ['verify'],
  ['repair'],
  ['export'],
  ['demo'],
];

describe('main: help, version and usage errors', () => {
  it('prints the version of package.json', async () => {
    for (const flag of ['--version', '-V']) {
      expect(await run([flag])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    }
  });

  it('prints help listing every command and the exit codes, on stdout with exit 0', async () => {
    const { code, stdout, stderr } = await run(['--help']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    for (const name of ['record', 'session', 'show', 'stats', 'verify', 'repair', 'export', 'demo']) {
      expect(stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    }
    expect(stdout).toContain('Exit codes:');
  });

  it('has help with --dir on every command, and examples on each command that takes one', async () => {
    for (const command of COMMANDS) {
      const { code, stdout } = await run([...command, '--help']);
      expect(code, command.join(' ')).toBe(0);
      expect(stdout, command.join(' ')).toMatch(
        command[0] === 'session' && command.length === 1 ? /Examples:/ : /--dir <folder>/,
      );
    }
    for (const command of ['record', 'show', 'verify', 'repair', 'export', 'demo', 'session']) {
      expect((await run([command, '--help'])).stdout, command).toContain('Examples:');
    }
  });

  it('shows defaults as they are typed, and the exit codes of repair --dry-run as the README has them', async () => {
    expect((await run(['export', '--help'])).stdout).toMatch(
      /--mode <octal> +permissions of the --out file \(default: 600\)/,
    );
    expect((await run(['repair', '--help'])).stdout.replace(/\s+/g, ' ')).toContain(
      'exit 1 when something would be repaired; folding the journal is routine, exit 0',
    );
  });

  it('exits 2 on an unknown command or flag, naming it, with a suggestion', async () => {
    const command = await run(['recrod']);
    expect(command.code).toBe(2);
    expect(command.stdout).toBe('');
    expect(command.stderr).toMatch(/^error E_USAGE: unknown command 'recrod'/);
    expect(command.stderr).toContain('Did you mean record?');

    const flag = await run(['show', '--agnet', 'x']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/^error E_USAGE: unknown option '--agnet'/);
  });

  it('exits 2 on a bad value, naming the flag and what is allowed', async () => {
    const choice = await run(['record', '--agent', 'a', '--status', 'done']);
    expect(choice.code).toBe(2);
    expect(choice.stderr).toContain("option '--status <status>' argument 'done' is invalid");
    expect(choice.stderr).toContain('Allowed choices are success, error, timeout, blocked');

    for (const [flag, value, allowed] of [
      ['--input-tokens', '1.5', 'whole number ≥ 0'],
      ['--output-tokens', 'many', 'whole number ≥ 0'],
      ['--duration', '-1', 'number ≥ 0'],
      ['--lock-timeout', '', 'whole number ≥ 0'],
    ]) {
      const result = await run(['record', '--agent', 'a', flag as string, value as string]);
      expect(result.code, flag).toBe(2);
      expect(result.stderr, flag).toContain(`option '${flag}`);
      expect(result.stderr, flag).toContain(allowed);
    }
    const limit = await run(['show', '--limit', '0']);
    expect(limit.code).toBe(2);
    expect(limit.stderr).toContain('whole number ≥ 1');
  });

  it('exits 2 with the help on stderr when no command is given', async () => {
    const { code, stdout, stderr } = await run([]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('Usage: agent-metrics');
  });

  it('exits 2 on a missing argument or a missing mandatory option', async () => {
    expect((await run(['session', 'end'])).stderr).toContain("missing required argument 'id'");
    expect((await run(['export'])).stderr).toContain("required option '--format <format>' not specified");
    expect((await run(['session', 'end', 'a', 'b'])).code).toBe(2);
  });
});

describe('exit codes and error messages', () => {
  it('maps error codes: usage and input 2, storage and anything else 3', () => {
    expect(exitCodeFor(new UsageError('x'))).toBe(EXIT.usage);
    for (const code of ['E_INVALID_INPUT', 'E_INVALID_OPTIONS', 'E_NOT_FOUND', 'E_CONFLICT'] as const) {
      expect(exitCodeFor(new MetricsError(code, 'x')), code).toBe(EXIT.usage);
    }
    expect(exitCodeFor(new LockAcquisitionError('/l', 5))).toBe(EXIT.storage);
    expect(exitCodeFor(new StorageIOError('read', '/f', new Error('EIO')))).toBe(EXIT.storage);
    expect(exitCodeFor(new MetricsError('E_INVALID_STATE', 'x'))).toBe(EXIT.storage);
    expect(exitCodeFor(new TypeError('bug'))).toBe(EXIT.storage);
  });

  it('puts the code first', () => {
    expect(describeError(new LockAcquisitionError('/d/.lock', 50))).toMatch(
      /^error E_LOCK_TIMEOUT: could not acquire \/d\/\.lock within 50 ms/,
    );
    expect(describeError(new UsageError('--dir: no'))).toBe('error E_USAGE: --dir: no');
    expect(describeError(new Error('boom'))).toBe('error E_UNEXPECTED: boom');
    expect(describeError('text')).toBe('error E_UNEXPECTED: text');
  });
});

describe('io', () => {
  it('processIo wires the real process', () => {
    const io = processIo();
    expect(io.stdout).toBe(process.stdout);
    expect(io.stderr).toBe(process.stderr);
    expect(io.stdin).toBe(process.stdin);
    expect(io.env).toBe(process.env);
    expect(io.cwd).toBe(process.cwd());
    expect(io.isTTY).toBe(process.stdout.isTTY === true);
    processIo();
    expect(process.stdout.listeners('error').filter((listener) => listener === onStdoutError)).toHaveLength(
      1,
    );
  });

  it('ignores a broken pipe on stdout (other failures: see e2e, exit 3)', () => {
    const before = process.exitCode;
    onStdoutError(Object.assign(new Error('EPIPE'), { code: 'EPIPE' }));
    expect(process.exitCode).toBe(before);
  });

  it('readAll joins string and byte chunks, even a character split across chunks', async () => {
    const euro = Buffer.from('€');
    async function* chunks() {
      yield 'a';
      yield euro.subarray(0, 1);
      yield euro.subarray(1);
      yield 'b';
    }
    expect(await readAll(chunks())).toBe('a€b');
  });
});
