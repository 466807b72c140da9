import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants, MetricsStore } from '../../src/index.js';
import { startWorker } from '../helpers/child.js';
import { tempDir } from '../helpers/temp-dir.js';
import { pythonProject as pythonProjectCopy, readState } from './helpers.js';

/** The built binary (npm test builds it first: pretest). */
const BIN = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url));

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(
  args: string[],
  options: { stdin?: string; env?: Record<string, string>; killAfterMs?: number } = {},
): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      // A command that hangs is killed (code null) instead of hanging the test run.
      ...(options.killAfterMs === undefined ? {} : { timeout: options.killAfterMs, killSignal: 'SIGKILL' }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

/** The binary with stdin and stdout as given (a descriptor, or 'ignore'), and stderr captured. */
function cliWithFds(args: string[], stdin: number | 'ignore', stdout: number | 'ignore'): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: [stdin, stdout, 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: '', stderr }));
  });
}

describe('the built agent-metrics binary', () => {
  beforeAll(() => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build first`);
  });

  it('is an executable node script, named in package.json bin', () => {
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(pkg.bin).toEqual({ 'agent-metrics': './dist/cli/bin.js' });
  });

  it('runs demo then show, as the README says', async () => {
    const dir = `${tempDir()}/demo`;
    const demo = await cli(['demo', '--dir', dir]);
    expect(demo.code).toBe(0);
    const show = await cli(['show', '--dir', dir], { env: { NO_COLOR: '1' } });
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('Project demo-project');
    expect(show.stdout).toContain('Sessions in progress');
  });

  it('records what a hook pipes into record --json -, and prints NDJSON', async () => {
    const dir = tempDir();
    const stdin = `${JSON.stringify({ agentName: 'coding', status: 'success', inputTokens: 1200, outputTokens: 800, model: 'claude-sonnet-4-5', artifacts: ['commit:abc'] })}\n${JSON.stringify({ agentName: 'github', status: 'error', errorMessage: 'rate limited' })}\n`;
    const { code, stdout, stderr } = await cli(['record', '--dir', dir, '--json', '-'], { stdin });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const printed = stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(printed).toEqual(readState(dir).events);
    expect(printed[0].estimated_cost_usd).toBeCloseTo(1.2 * 0.003 + 0.8 * 0.015, 10);
  });

  it('exits 2 on a usage error and 1 when verify finds problems, writing to stderr', async () => {
    const usage = await cli(['record', '--agent', 'a', '--status', 'maybe']);
    expect(usage.code).toBe(2);
    expect(usage.stdout).toBe('');
    expect(usage.stderr).toMatch(/^error E_USAGE: option '--status <status>' argument 'maybe' is invalid/);
    const verify = await cli(['verify', '--dir', tempDir()]);
    expect(verify.code).toBe(1);
  });

  it('stops quietly with exit 0 when the reader closes the pipe (show | head)', async () => {
    const dir = pythonProjectCopy();
    const child = spawn(process.execPath, [BIN, 'show', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed before the child has even started: its first write fails with EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('loses no event when several processes record into one project at once', async () => {
    const dir = tempDir();
    const perProcess = 15;
    const line = (agent: string) =>
      `${JSON.stringify({ agentName: agent, status: 'success', inputTokens: 10 })}\n`;
    const runs = await Promise.all(
      ['a', 'b', 'c', 'd'].map((agent) =>
        cli(['record', '--dir', dir, '--json', '-'], { stdin: line(agent).repeat(perProcess) }),
      ),
    );
    expect(runs.map((exit) => exit.code)).toEqual([0, 0, 0, 0]);
    const state = readState(dir);
    expect(state.events).toHaveLength(4 * perProcess);
    expect(state.total_tokens).toBe(4 * perProcess * 10);
    for (const agent of ['a', 'b', 'c', 'd']) expect(state.agents[agent]?.total_invocations).toBe(perProcess);
    expect(checkInvariants(state)).toEqual([]);
  });

  it('ends with E_LOCK_TIMEOUT (exit 3) while a stuck process still holds the lock, without waiting for it again', async () => {
    const dir = tempDir();
    expect((await cli(['record', '--dir', dir, '--agent', 'a'])).code).toBe(0); // a journal to fold
    // Holds the lock until its stdin closes: after the command has ended, or never if it hangs.
    const holder = startWorker('lock-holder.mjs', [dir]);
    await holder.waitForLine(/^locked /);
    const { code, stdout, stderr } = await cli([
      'record',
      '--dir',
      dir,
      '--agent',
      'b',
      '--lock-timeout',
      '200',
    ]);
    expect(code).toBe(3);
    expect(stdout).toBe('');
    // One line: no second wait for the lock by a closing checkpoint, and no warning about one.
    expect(stderr).toMatch(
      /^error E_LOCK_TIMEOUT: could not acquire .* within 200 ms \(held by pid \d+\)\n$/,
    );
    holder.child.stdin?.end();
    expect((await holder.exited).stdout).toContain('released');
    // The holder's update went in after the command gave up; the command's event never did.
    const state = await new MetricsStore({ projectName: 'p', dir }).load();
    expect(state.total_sessions).toBe(1);
    expect(Object.keys(state.agents)).toEqual(['a']);
  }, 20_000);

  it('exits 3 with error E_IO when stdout cannot be written (a full disk), the event still recorded', async () => {
    const dir = tempDir();
    const full = openSync('/dev/full', 'w');
    const exit = await cliWithFds(['record', '--dir', dir, '--agent', 'a'], 'ignore', full);
    closeSync(full);
    expect(exit.code).toBe(3);
    expect(exit.stderr).toMatch(/^error E_IO: could not write to stdout: .*ENOSPC/);
    expect(exit.stderr).not.toContain('    at ');
    expect(Object.keys((await new MetricsStore({ projectName: 'p', dir }).load()).agents)).toEqual(['a']);
  });

  it('names a FIFO or a device where a file belongs, instead of waiting for a writer or reading forever', async () => {
    const fifo = tempDir();
    execFileSync('mkfifo', [join(fifo, '.agent_metrics.json')]);
    const device = tempDir();
    symlinkSync('/dev/zero', join(device, '.agent_metrics.json'));
    for (const [dir, kind] of [
      [fifo, 'a FIFO'],
      [device, 'a device'],
    ] as const) {
      const shown = await cli(['show', '--dir', dir], { killAfterMs: 20_000 });
      expect(shown.code).toBe(3);
      expect(shown.stderr).toContain(
        `error E_IO: read failed for ${join(dir, '.agent_metrics.json')}: ENOTREG: ${kind}, not a regular file`,
      );
      // The figures, then the error: nothing could be read.
      const stats = await cli(['stats', '--dir', dir, '--json'], { killAfterMs: 20_000 });
      expect(stats.code).toBe(3);
      expect(JSON.parse(stats.stdout)).toMatchObject({
        metricsFileKind: 'other',
        readError: expect.stringContaining(`ENOTREG: ${kind}, not a regular file`),
      });
      expect(stats.stderr).toContain(`ENOTREG: ${kind}, not a regular file`);
    }
    // A FIFO as the backup, with no main file: the load names it too.
    const backup = tempDir();
    execFileSync('mkfifo', [join(backup, '.agent_metrics.json.bak')]);
    const recorded = await cli(['record', '--dir', backup, '--agent', 'a'], { killAfterMs: 20_000 });
    expect(recorded.code).toBe(3);
    expect(recorded.stderr).toContain('ENOTREG: a FIFO, not a regular file');
  });

  it('says stdin is a folder when record --json - reads from one, not that it is empty', async () => {
    const dir = tempDir();
    const folder = openSync(tempDir(), 'r');
    const exit = await cliWithFds(['record', '--dir', dir, '--json', '-'], folder, 'ignore');
    closeSync(folder);
    expect(exit.code).toBe(2);
    expect(exit.stderr).toBe(
      'error E_USAGE: stdin is a folder, not a file or a pipe: redirect a file (< events.ndjson) or pipe the input in\n',
    );
    expect(existsSync(join(dir, '.agent_metrics.json'))).toBe(false);
  });

  it('warns, with the code, when the closing checkpoint fails; the event is recorded all the same', async () => {
    const dir = tempDir();
    expect((await cli(['record', '--dir', dir, '--agent', 'a'])).code).toBe(0);
    mkdirSync(join(dir, '.agent_metrics.json.bak')); // the checkpoint cannot put its backup there
    const { code, stderr } = await cli(['record', '--dir', dir, '--agent', 'b']);
    expect(code).toBe(0);
    expect(stderr).toMatch(
      /^warning: could not update .*\.agent_metrics\.json \(the journal holds everything\): E_IO: backup failed for .*EISDIR/,
    );
    expect(Object.keys((await new MetricsStore({ projectName: 'p', dir }).load()).agents)).toEqual([
      'a',
      'b',
    ]);
  });

  it('exits 3 when stdout and stderr both fail, and still folds the journal before it ends', async () => {
    const dir = tempDir();
    expect((await cli(['record', '--dir', dir, '--agent', 'a'])).code).toBe(0); // a journal to fold
    const full = openSync('/dev/full', 'w');
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'record', '--dir', dir, '--agent', 'q'], {
        stdio: ['ignore', full, full],
      });
      child.on('error', reject);
      child.on('close', resolve);
    });
    closeSync(full);
    expect(code).toBe(3);
    // The closing checkpoint ran: the JSON file alone holds the event.
    expect(readState(dir).agents.q?.total_invocations).toBe(1);
  });
});
